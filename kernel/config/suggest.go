package config

import "strings"

// closest returns the candidate nearest to name by case-insensitive Levenshtein
// distance, or "" when nothing is near enough to be a plausible typo.
func closest(name string, candidates []string) string {
	lname := strings.ToLower(name)
	best, bestDist := "", -1
	for _, c := range candidates {
		d := levenshtein(lname, strings.ToLower(c))
		if bestDist < 0 || d < bestDist || (d == bestDist && c < best) {
			best, bestDist = c, d
		}
	}
	// Allow about one edit in three characters, at least two: enough for typos
	// and old spellings, not so much that unrelated keys are offered.
	limit := max(2, len(name)/3)
	if bestDist < 0 || bestDist > limit {
		return ""
	}
	return best
}

// levenshtein is the edit distance between a and b (bytes; keys are ASCII).
func levenshtein(a, b string) int {
	if len(a) < len(b) {
		a, b = b, a
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// suggestionCandidates lists what a key could have meant: the RocketMQ names of
// role and every dotted path.
func suggestionCandidates(role string) []string {
	out := RocketMQNames(role)
	keysMu.RLock()
	for p := range keys {
		out = append(out, p)
	}
	keysMu.RUnlock()
	return out
}

// byLastLabel returns the path of the key whose last label is name (any case),
// if there is exactly one.
func byLastLabel(name string) string {
	if strings.Contains(name, ".") {
		return ""
	}
	keysMu.RLock()
	defer keysMu.RUnlock()
	found := ""
	for p := range keys {
		if strings.EqualFold(p[strings.LastIndexByte(p, '.')+1:], name) {
			if found != "" {
				return "" // ambiguous: leave it to the edit distance
			}
			found = p
		}
	}
	return found
}
