package body

import (
	"encoding/json"
	"fmt"
)

// SubscriptionGroupConfig is RocketMQ's SubscriptionGroupConfig: a consumer group's
// settings as kept in subscriptionGroup.json and exchanged by codes 200 and 201.
type SubscriptionGroupConfig struct {
	GroupName                      string `json:"groupName"`
	ConsumeEnable                  bool   `json:"consumeEnable"`
	ConsumeFromMinEnable           bool   `json:"consumeFromMinEnable"`
	ConsumeBroadcastEnable         bool   `json:"consumeBroadcastEnable"`
	RetryMaxTimes                  int32  `json:"retryMaxTimes"`
	RetryQueueNums                 int32  `json:"retryQueueNums"`
	BrokerID                       int64  `json:"brokerId"`
	WhichBrokerWhenConsumeSlowly   int64  `json:"whichBrokerWhenConsumeSlowly"`
	NotifyConsumerIdsChangedEnable bool   `json:"notifyConsumerIdsChangedEnable"`
}

// NewSubscriptionGroupConfig returns a group config with RocketMQ's defaults.
func NewSubscriptionGroupConfig(group string) SubscriptionGroupConfig {
	return SubscriptionGroupConfig{
		GroupName:                      group,
		ConsumeEnable:                  true,
		ConsumeFromMinEnable:           true,
		ConsumeBroadcastEnable:         true,
		RetryMaxTimes:                  16,
		RetryQueueNums:                 1,
		BrokerID:                       MasterID,
		WhichBrokerWhenConsumeSlowly:   1,
		NotifyConsumerIdsChangedEnable: true,
	}
}

// DecodeSubscriptionGroupConfig parses a group config; fields the JSON omits keep
// RocketMQ's defaults (as Java's field initialisers do).
func DecodeSubscriptionGroupConfig(data []byte) (SubscriptionGroupConfig, error) {
	c := NewSubscriptionGroupConfig("")
	if err := Unmarshal(data, &c); err != nil {
		return c, fmt.Errorf("subscription group config: %w", err)
	}
	return c, nil
}

// SubscriptionGroupWrapper is subscriptionGroup.json and the body of
// GET_ALL_SUBSCRIPTIONGROUP_CONFIG (201).
type SubscriptionGroupWrapper struct {
	SubscriptionGroupTable map[string]SubscriptionGroupConfig `json:"subscriptionGroupTable"`
	DataVersion            DataVersion                        `json:"dataVersion"`
}

// DecodeSubscriptionGroupWrapper parses a wrapper; each group's missing fields take
// their defaults and a group filed without a name gets its key as name.
func DecodeSubscriptionGroupWrapper(data []byte) (*SubscriptionGroupWrapper, error) {
	var raw struct {
		SubscriptionGroupTable map[string]json.RawMessage `json:"subscriptionGroupTable"`
		DataVersion            DataVersion                `json:"dataVersion"`
	}
	if err := Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("subscription groups: %w", err)
	}
	w := &SubscriptionGroupWrapper{SubscriptionGroupTable: make(map[string]SubscriptionGroupConfig, len(raw.SubscriptionGroupTable)), DataVersion: raw.DataVersion}
	for name, r := range raw.SubscriptionGroupTable {
		c, err := DecodeSubscriptionGroupConfig(r)
		if err != nil {
			return nil, fmt.Errorf("subscription group %q: %w", name, err)
		}
		if c.GroupName == "" {
			c.GroupName = name
		}
		w.SubscriptionGroupTable[name] = c
	}
	return w, nil
}
