package broker

import (
	"strings"

	"github.com/mqd/mqd/storage/message"
)

// Expression types of subscriptions (RocketMQ ExpressionType).
const (
	exprTypeTag   = "TAG"
	exprTypeSQL92 = "SQL92"
	subAll        = "*"
)

// isTagExpression reports whether an expression type means tag filtering; Java
// treats an empty type as TAG (old clients send none).
func isTagExpression(t string) bool { return t == "" || t == exprTypeTag }

// tagFilter is the storage.Filter of a TAG subscription: it matches consume-queue
// entries by the Java hash of their tag, as Java's ExpressionMessageFilter does.
// Hash collisions are possible; clients re-check the tag string. Codes compare as
// 32-bit values because Java keeps the set as Integer and the consume queue holds
// the sign-extended hash.
type tagFilter struct {
	all   bool
	codes []int32
	// inline backs codes for the usual few tags, saving an allocation per pull.
	inline [4]int32
}

// MatchTagsCode implements storage.Filter.
func (f *tagFilter) MatchTagsCode(tagsCode int64) bool {
	if f.all {
		return true
	}
	c := int32(tagsCode)
	for _, x := range f.codes {
		if x == c {
			return true
		}
	}
	return false
}

// MatchRecord implements storage.Filter: tag filters decide on the consume queue alone.
func (f *tagFilter) MatchRecord([]byte) bool { return true }

func (f *tagFilter) add(code int32) {
	if f.codes == nil {
		f.codes = f.inline[:0]
	}
	for _, x := range f.codes {
		if x == code {
			return
		}
	}
	f.codes = append(f.codes, code)
}

// newTagFilter parses a TAG subscription expression the way Java's
// FilterAPI.buildSubscriptionData does: empty or "*" subscribes to everything,
// otherwise the expression is split on "||" and every non-blank, trimmed piece
// is a tag. An expression with no tag at all ("||") matches nothing, as in Java.
func newTagFilter(expr string) *tagFilter {
	f := &tagFilter{}
	if expr == "" || expr == subAll {
		f.all = true
		return f
	}
	for rest := expr; ; {
		piece, tail, more := strings.Cut(rest, "||")
		if tag := strings.TrimSpace(piece); tag != "" {
			f.add(int32(message.TagsHashCode(tag)))
		}
		if !more {
			break
		}
		rest = tail
	}
	return f
}

// heartbeatFilter filters by a subscription registered by heartbeat, whose tag
// codes the client manager computed at registration. A struct holding one
// pointer converts to storage.Filter without allocating.
type heartbeatFilter struct{ sub *SubscriptionData }

// MatchTagsCode implements storage.Filter.
func (f heartbeatFilter) MatchTagsCode(tagsCode int64) bool { return f.sub.MatchTagsCode(tagsCode) }

// MatchRecord implements storage.Filter.
func (f heartbeatFilter) MatchRecord([]byte) bool { return true }
