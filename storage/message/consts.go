package message

// Magic codes of stored records (RocketMQ 4.x "v1" layout).
const (
	// MagicMessage starts every message record (0xDAA320A7).
	MagicMessage int32 = -626843481
	// MagicBlank starts the filler record at the end of a commit-log file (0xCBD43194).
	MagicBlank int32 = -875286124
)

// SysFlag bits (MessageSysFlag).
const (
	SysFlagCompressed   int32 = 0x1
	SysFlagMultiTags    int32 = 0x2
	SysFlagTranNotType  int32 = 0x0
	SysFlagTranPrepared int32 = 0x4
	SysFlagTranCommit   int32 = 0x8
	SysFlagTranRollback int32 = 0xC
	SysFlagTranMask     int32 = 0xC
	SysFlagBornHostV6   int32 = 0x10
	SysFlagStoreHostV6  int32 = 0x20
	SysFlagNeedUnwrap   int32 = 0x40
	SysFlagInnerBatch   int32 = 0x80
)

// TranType returns the transaction bits of a sysFlag (0, 0x4, 0x8 or 0xC).
func TranType(sysFlag int32) int32 { return sysFlag & SysFlagTranMask }

// Dispatchable reports whether a record with this sysFlag goes to a consume queue:
// PREPARED (half) and ROLLBACK records are kept only in the commit log.
func Dispatchable(sysFlag int32) bool {
	t := sysFlag & SysFlagTranMask
	return t == SysFlagTranNotType || t == SysFlagTranCommit
}

// Property separators of the property string.
const (
	NameValueSeparator = '\x01'
	PropertySeparator  = '\x02'
)

// Well-known property keys (MessageConst).
const (
	PropertyKeys                       = "KEYS"
	PropertyTags                       = "TAGS"
	PropertyWaitStoreMsgOK             = "WAIT"
	PropertyDelayLevel                 = "DELAY"
	PropertyRetryTopic                 = "RETRY_TOPIC"
	PropertyRealTopic                  = "REAL_TOPIC"
	PropertyRealQueueID                = "REAL_QID"
	PropertyTransactionPrepared        = "TRAN_MSG"
	PropertyProducerGroup              = "PGROUP"
	PropertyMinOffset                  = "MIN_OFFSET"
	PropertyMaxOffset                  = "MAX_OFFSET"
	PropertyBuyerID                    = "BUYER_ID"
	PropertyOriginMessageID            = "ORIGIN_MESSAGE_ID"
	PropertyTransferFlag               = "TRANSFER_FLAG"
	PropertyCorrectionFlag             = "CORRECTION_FLAG"
	PropertyMQ2Flag                    = "MQ2_FLAG"
	PropertyReconsumeTime              = "RECONSUME_TIME"
	PropertyMsgRegion                  = "MSG_REGION"
	PropertyTraceSwitch                = "TRACE_ON"
	PropertyUniqKey                    = "UNIQ_KEY"
	PropertyMaxReconsumeTimes          = "MAX_RECONSUME_TIMES"
	PropertyConsumeStartTimestamp      = "CONSUME_START_TIME"
	PropertyTranPreparedQueueOffset    = "TRAN_PREPARED_QUEUE_OFFSET"
	PropertyTransactionCheckTimes      = "TRANSACTION_CHECK_TIMES"
	PropertyCheckImmunityTimeInSeconds = "CHECK_IMMUNITY_TIME_IN_SECONDS"
	PropertyInstanceID                 = "INSTANCE_ID"
	PropertyCorrelationID              = "CORRELATION_ID"
	PropertyReplyToClient              = "REPLY_TO_CLIENT"
	PropertyTTL                        = "TTL"
	PropertyArriveTime                 = "ARRIVE_TIME"
	PropertyPushReplyTime              = "PUSH_REPLY_TIME"
	PropertyCluster                    = "CLUSTER"
	PropertyMsgType                    = "MSG_TYPE"
	PropertyInnerMultiDispatch         = "INNER_MULTI_DISPATCH"
	PropertyInnerMultiQueueOffset      = "INNER_MULTI_QUEUE_OFFSET"
	PropertyShardingKey                = "SHARDING_KEY"
	PropertyTimerDeliverMS             = "TIMER_DELIVER_MS"
	// RocketMQ 5 timer properties: a relative delay (seconds or ms) the broker
	// turns into TIMER_OUT_MS, the absolute delivery time it stores.
	PropertyTimerDelaySec = "TIMER_DELAY_SEC"
	PropertyTimerDelayMS  = "TIMER_DELAY_MS"
	PropertyTimerOutMS    = "TIMER_OUT_MS"
)

// KeySeparator separates the business keys inside the KEYS property.
const KeySeparator = " "

// Limits of the v1 record layout.
const (
	// MaxTopicLength is the longest topic a record can hold (one signed length byte).
	MaxTopicLength = 127
	// MaxPropertiesLength is the longest property string (signed 16-bit length).
	MaxPropertiesLength = 32767
	// BlankRecordMinSize is the filler record written at the end of a file.
	BlankRecordMinSize = 8
)
