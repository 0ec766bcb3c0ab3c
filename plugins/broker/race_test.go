//go:build race

package broker

// raceEnabled reports a -race build: rocketmq-client-go races with itself
// (plain fields such as rmqClient.close and the consumer group name are
// written and read by different goroutines), so tests driving it run without
// -race only.
const raceEnabled = true
