//go:build race

package main

// raceEnabled reports a -race build: rocketmq-client-go races with itself
// (a consumer's shutdown closes a channel its pull goroutines send on; plain
// fields such as rmqClient.close are written and read by different
// goroutines), so tests driving it run without -race only.
const raceEnabled = true
