package remoting

import "strconv"

// More language codes (RocketMQ LanguageCode); JSON headers carry their names.
const (
	LangCPP    LanguageCode = 1
	LangDotNet LanguageCode = 2
	LangPython LanguageCode = 3
	LangDelphi LanguageCode = 4
	LangErlang LanguageCode = 5
	LangRuby   LanguageCode = 6
	LangOther  LanguageCode = 7
	LangHTTP   LanguageCode = 8
	LangPHP    LanguageCode = 10
	LangOMS    LanguageCode = 11
	LangRust   LanguageCode = 12
)

var languageNames = [...]string{
	LangJava: "JAVA", LangCPP: "CPP", LangDotNet: "DOTNET", LangPython: "PYTHON",
	LangDelphi: "DELPHI", LangErlang: "ERLANG", LangRuby: "RUBY", LangOther: "OTHER",
	LangHTTP: "HTTP", LangGo: "GO", LangPHP: "PHP", LangOMS: "OMS", LangRust: "RUST",
}

// String returns the Java enum name (as JSON headers carry it), or the number
// for codes this package does not know.
func (l LanguageCode) String() string {
	if int(l) < len(languageNames) {
		return languageNames[l]
	}
	return strconv.Itoa(int(l))
}

// languageByName maps a JSON header's language name to its code; unknown names
// are OTHER (the peer's language is informational only).
func languageByName(name string) LanguageCode {
	for i, n := range languageNames {
		if n == name {
			return LanguageCode(i)
		}
	}
	return LangOther
}

// String returns "JSON" or "ROCKETMQ" (Java's SerializeType names).
func (t SerializeType) String() string {
	switch t {
	case JSON:
		return "JSON"
	case RocketMQ:
		return "ROCKETMQ"
	}
	return "SerializeType(" + strconv.Itoa(int(t)) + ")"
}

var requestCodeNames = map[int16]string{
	SendMessage: "SEND_MESSAGE", PullMessage: "PULL_MESSAGE", QueryMessage: "QUERY_MESSAGE",
	QueryBrokerOffset: "QUERY_BROKER_OFFSET", QueryConsumerOffset: "QUERY_CONSUMER_OFFSET",
	UpdateConsumerOffset: "UPDATE_CONSUMER_OFFSET", UpdateAndCreateTopic: "UPDATE_AND_CREATE_TOPIC",
	GetAllTopicConfig: "GET_ALL_TOPIC_CONFIG", GetTopicConfigList: "GET_TOPIC_CONFIG_LIST",
	GetTopicNameList: "GET_TOPIC_NAME_LIST", UpdateBrokerConfig: "UPDATE_BROKER_CONFIG",
	GetBrokerConfig: "GET_BROKER_CONFIG", TriggerDeleteFiles: "TRIGGER_DELETE_FILES",
	GetBrokerRuntimeInfo: "GET_BROKER_RUNTIME_INFO", SearchOffsetByTimestamp: "SEARCH_OFFSET_BY_TIMESTAMP",
	GetMaxOffset: "GET_MAX_OFFSET", GetMinOffset: "GET_MIN_OFFSET",
	GetEarliestMsgStoretime: "GET_EARLIEST_MSG_STORETIME", ViewMessageByID: "VIEW_MESSAGE_BY_ID",
	HeartBeat: "HEART_BEAT", UnregisterClient: "UNREGISTER_CLIENT",
	ConsumerSendMsgBack: "CONSUMER_SEND_MSG_BACK", EndTransaction: "END_TRANSACTION",
	GetConsumerListByGroup: "GET_CONSUMER_LIST_BY_GROUP", CheckTransactionState: "CHECK_TRANSACTION_STATE",
	NotifyConsumerIdsChanged: "NOTIFY_CONSUMER_IDS_CHANGED", LockBatchMQ: "LOCK_BATCH_MQ",
	UnlockBatchMQ: "UNLOCK_BATCH_MQ", GetAllConsumerOffset: "GET_ALL_CONSUMER_OFFSET",
	GetAllDelayOffset: "GET_ALL_DELAY_OFFSET", CheckClientConfig: "CHECK_CLIENT_CONFIG",
	PutKVConfig: "PUT_KV_CONFIG", GetKVConfig: "GET_KV_CONFIG", DeleteKVConfig: "DELETE_KV_CONFIG",
	RegisterBroker: "REGISTER_BROKER", UnregisterBroker: "UNREGISTER_BROKER",
	GetRouteInfoByTopic: "GET_ROUTEINFO_BY_TOPIC", GetBrokerClusterInfo: "GET_BROKER_CLUSTER_INFO",
	UpdateAndCreateSubscriptionGroup: "UPDATE_AND_CREATE_SUBSCRIPTIONGROUP",
	GetAllSubscriptionGroupConfig:    "GET_ALL_SUBSCRIPTIONGROUP_CONFIG",
	GetTopicStatsInfo:                "GET_TOPIC_STATS_INFO", GetConsumerConnectionList: "GET_CONSUMER_CONNECTION_LIST",
	GetProducerConnectionList: "GET_PRODUCER_CONNECTION_LIST", WipeWritePermOfBroker: "WIPE_WRITE_PERM_OF_BROKER",
	GetAllTopicListFromNameServer: "GET_ALL_TOPIC_LIST_FROM_NAMESERVER",
	DeleteSubscriptionGroup:       "DELETE_SUBSCRIPTIONGROUP", GetConsumeStats: "GET_CONSUME_STATS",
	SuspendConsumer: "SUSPEND_CONSUMER", ResumeConsumer: "RESUME_CONSUMER",
	ResetConsumerOffsetInConsumer: "RESET_CONSUMER_OFFSET_IN_CONSUMER",
	ResetConsumerOffsetInBroker:   "RESET_CONSUMER_OFFSET_IN_BROKER",
	AdjustConsumerThreadPool:      "ADJUST_CONSUMER_THREAD_POOL", WhoConsumeTheMessage: "WHO_CONSUME_THE_MESSAGE",
	DeleteTopicInBroker: "DELETE_TOPIC_IN_BROKER", DeleteTopicInNamesrv: "DELETE_TOPIC_IN_NAMESRV",
	GetKVListByNamespace: "GET_KVLIST_BY_NAMESPACE", ResetConsumerClientOffset: "RESET_CONSUMER_CLIENT_OFFSET",
	GetConsumerStatusFromClient:     "GET_CONSUMER_STATUS_FROM_CLIENT",
	InvokeBrokerToResetOffset:       "INVOKE_BROKER_TO_RESET_OFFSET",
	InvokeBrokerToGetConsumerStatus: "INVOKE_BROKER_TO_GET_CONSUMER_STATUS",
	QueryTopicConsumeByWho:          "QUERY_TOPIC_CONSUME_BY_WHO", GetTopicsByCluster: "GET_TOPICS_BY_CLUSTER",
	QueryConsumeTimeSpan: "QUERY_CONSUME_TIME_SPAN", GetSystemTopicListFromNS: "GET_SYSTEM_TOPIC_LIST_FROM_NS",
	GetSystemTopicListFromBroker: "GET_SYSTEM_TOPIC_LIST_FROM_BROKER",
	CleanExpiredConsumeQueue:     "CLEAN_EXPIRED_CONSUMEQUEUE", GetConsumerRunningInfo: "GET_CONSUMER_RUNNING_INFO",
	QueryCorrectionOffset: "QUERY_CORRECTION_OFFSET", ConsumeMessageDirectly: "CONSUME_MESSAGE_DIRECTLY",
	SendMessageV2: "SEND_MESSAGE_V2", GetUnitTopicList: "GET_UNIT_TOPIC_LIST",
	GetHasUnitSubTopicList:       "GET_HAS_UNIT_SUB_TOPIC_LIST",
	GetHasUnitSubUnunitTopicList: "GET_HAS_UNIT_SUB_UNUNIT_TOPIC_LIST",
	CloneGroupOffset:             "CLONE_GROUP_OFFSET", ViewBrokerStatsData: "VIEW_BROKER_STATS_DATA",
	CleanUnusedTopic: "CLEAN_UNUSED_TOPIC", GetBrokerConsumeStats: "GET_BROKER_CONSUME_STATS",
	UpdateNamesrvConfig: "UPDATE_NAMESRV_CONFIG", GetNamesrvConfig: "GET_NAMESRV_CONFIG",
	SendBatchMessage: "SEND_BATCH_MESSAGE", QueryConsumeQueue: "QUERY_CONSUME_QUEUE",
	QueryDataVersion: "QUERY_DATA_VERSION", ResumeCheckHalfMessage: "RESUME_CHECK_HALF_MESSAGE",
	SendReplyMessage: "SEND_REPLY_MESSAGE", SendReplyMessageV2: "SEND_REPLY_MESSAGE_V2",
	PushReplyMessageToClient: "PUSH_REPLY_MESSAGE_TO_CLIENT", AddWritePermOfBroker: "ADD_WRITE_PERM_OF_BROKER",
	BrokerHeartbeat: "BROKER_HEARTBEAT", ControllerAlterSyncStateSet: "CONTROLLER_ALTER_SYNC_STATE_SET",
	ControllerElectMaster: "CONTROLLER_ELECT_MASTER", ControllerRegisterBroker: "CONTROLLER_REGISTER_BROKER",
	ControllerGetReplicaInfo: "CONTROLLER_GET_REPLICA_INFO", ControllerGetMetadataInfo: "CONTROLLER_GET_METADATA_INFO",
	ControllerGetSyncStateData: "CONTROLLER_GET_SYNC_STATE_DATA", GetBrokerEpochCache: "GET_BROKER_EPOCH_CACHE",
	NotifyBrokerRoleChanged: "NOTIFY_BROKER_ROLE_CHANGED", ControllerGetNextBrokerID: "CONTROLLER_GET_NEXT_BROKER_ID",
	ControllerApplyBrokerID: "CONTROLLER_APPLY_BROKER_ID",
}

var responseCodeNames = map[int16]string{
	Success: "SUCCESS", SystemError: "SYSTEM_ERROR", SystemBusy: "SYSTEM_BUSY",
	RequestCodeNotSupported: "REQUEST_CODE_NOT_SUPPORTED", TransactionFailed: "TRANSACTION_FAILED",
	FlushDiskTimeout: "FLUSH_DISK_TIMEOUT", SlaveNotAvailable: "SLAVE_NOT_AVAILABLE",
	FlushSlaveTimeout: "FLUSH_SLAVE_TIMEOUT", MessageIllegal: "MESSAGE_ILLEGAL",
	ServiceNotAvailable: "SERVICE_NOT_AVAILABLE", VersionNotSupported: "VERSION_NOT_SUPPORTED",
	NoPermission: "NO_PERMISSION", TopicNotExist: "TOPIC_NOT_EXIST", TopicExistAlready: "TOPIC_EXIST_ALREADY",
	PullNotFound: "PULL_NOT_FOUND", PullRetryImmediately: "PULL_RETRY_IMMEDIATELY",
	PullOffsetMoved: "PULL_OFFSET_MOVED", QueryNotFound: "QUERY_NOT_FOUND",
	SubscriptionParseFailed: "SUBSCRIPTION_PARSE_FAILED", SubscriptionNotExist: "SUBSCRIPTION_NOT_EXIST",
	SubscriptionNotLatest: "SUBSCRIPTION_NOT_LATEST", SubscriptionGroupNotExist: "SUBSCRIPTION_GROUP_NOT_EXIST",
	FilterDataNotExist: "FILTER_DATA_NOT_EXIST", FilterDataNotLatest: "FILTER_DATA_NOT_LATEST",
	TransactionShouldCommit: "TRANSACTION_SHOULD_COMMIT", TransactionShouldRollback: "TRANSACTION_SHOULD_ROLLBACK",
	TransactionStateUnknow: "TRANSACTION_STATE_UNKNOW", TransactionStateGroupWrong: "TRANSACTION_STATE_GROUP_WRONG",
	NoBuyerID: "NO_BUYER_ID", NotInCurrentUnit: "NOT_IN_CURRENT_UNIT", ConsumerNotOnline: "CONSUMER_NOT_ONLINE",
	ConsumeMsgTimeout: "CONSUME_MSG_TIMEOUT", NoMessage: "NO_MESSAGE", FlowControl: "FLOW_CONTROL",
	ControllerFencedMasterEpoch: "CONTROLLER_FENCED_MASTER_EPOCH", ControllerFencedSyncStateSetEpoch: "CONTROLLER_FENCED_SYNC_STATE_SET_EPOCH",
	ControllerInvalidMaster: "CONTROLLER_INVALID_MASTER", ControllerInvalidReplicas: "CONTROLLER_INVALID_REPLICAS",
	ControllerMasterNotAvailable: "CONTROLLER_MASTER_NOT_AVAILABLE", ControllerInvalidRequest: "CONTROLLER_INVALID_REQUEST",
	ControllerBrokerNotAlive: "CONTROLLER_BROKER_NOT_ALIVE", ControllerNotLeader: "CONTROLLER_NOT_LEADER",
	ControllerBrokerMetadataNotExist: "CONTROLLER_BROKER_METADATA_NOT_EXIST", ControllerBrokerNeedToBeRegistered: "CONTROLLER_BROKER_NEED_TO_BE_REGISTERED",
	ControllerMasterStillExist: "CONTROLLER_MASTER_STILL_EXIST", ControllerElectMasterFailed: "CONTROLLER_ELECT_MASTER_FAILED",
	ControllerAlterSyncStateSetFailed: "CONTROLLER_ALTER_SYNC_STATE_SET_FAILED", ControllerBrokerIDInvalid: "CONTROLLER_BROKER_ID_INVALID",
}

// RequestCodeName returns the Java RequestCode name of code, or its number.
func RequestCodeName(code int16) string {
	if n, ok := requestCodeNames[code]; ok {
		return n
	}
	return strconv.Itoa(int(code))
}

// ResponseCodeName returns the Java ResponseCode name of code, or its number.
func ResponseCodeName(code int16) string {
	if n, ok := responseCodeNames[code]; ok {
		return n
	}
	return strconv.Itoa(int(code))
}

// CodeName names the command's code as a request or a response code.
func (c *Command) CodeName() string {
	if c.IsResponse() {
		return ResponseCodeName(c.Code)
	}
	return RequestCodeName(c.Code)
}
