package config

// RocketMQ 4.9.8 property names that an operator's broker.conf or
// namesrv.properties may carry. Each is registered here as
// accepted-but-not-implemented; a package that implements one registers it
// with Register, which takes precedence, so this list may name keys that are
// implemented elsewhere. A file holding the rest loads with one warning naming
// them, where RocketMQ would have acted on them (or, for the 3.x-only keys,
// silently ignored them). See docs/architecture.md, Configuration.
func init() {
	RegisterUnimplemented("broker", brokerRocketMQKeys...)
	RegisterUnimplemented("broker", brokerControllerModeKeys...)
	RegisterUnimplemented("namesrv", controllerRocketMQKeys...)
	RegisterUnimplemented("broker", nettyServerRocketMQKeys...)
	RegisterUnimplemented("namesrv", namesrvRocketMQKeys...)
	RegisterUnimplemented("namesrv", nettyServerRocketMQKeys...)
}

var brokerRocketMQKeys = []string{
	// BrokerConfig, MessageStoreConfig: the settings of a typical broker.conf.
	"rocketmqHome",
	"brokerClusterName",
	"brokerName",
	"brokerId",
	"namesrvAddr",
	"fetchNamesrvAddrByAddressServer",
	"brokerIP1",
	"brokerIP2",
	"listenPort",
	"haListenPort",
	"brokerRole",
	"flushDiskType",
	"deleteWhen",
	"fileReservedTime",
	"defaultTopicQueueNums",
	"autoCreateTopicEnable",
	"autoCreateSubscriptionGroup",
	"mapedFileSizeCommitLog",
	"mappedFileSizeCommitLog",
	"mapedFileSizeConsumeQueue",
	"mappedFileSizeConsumeQueue",
	"destroyMapedFileIntervalForcibly",
	"redeleteHangedFileInterval",
	"diskMaxUsedSpaceRatio",
	"storePathRootDir",
	"storePathCommitLog",
	"maxMessageSize",
	"flushCommitLogLeastPages",
	"flushConsumeQueueLeastPages",
	"flushCommitLogThoroughInterval",
	"flushConsumeQueueThoroughInterval",
	"flushIntervalCommitLog",
	"flushIntervalConsumeQueue",
	"sendMessageThreadPoolNums",
	"pullMessageThreadPoolNums",
	// RocketMQ 3.x only: 4.x ignores them too (the paths are fixed under
	// storePathRootDir), but the widely copied sample files still carry them.
	"storePathConsumeQueue",
	"storePathIndex",
	"storeCheckpoint",
	"abortFile",

	// Other BrokerConfig / MessageStoreConfig settings.
	"brokerPermission",
	"slaveReadEnable",
	"longPollingEnable",
	"shortPollingTimeMills",
	"registerNameServerPeriod",
	"registerBrokerTimeoutMills",
	"forceRegister",
	"compressedRegister",
	"flushConsumerOffsetInterval",
	"flushConsumerOffsetHistoryInterval",
	"transactionTimeOut",
	"transactionCheckMax",
	"transactionCheckInterval",
	"rejectTransactionMessage",
	// A 3.x-only key (4.x ignores it) that mqd implements because the seed
	// file sets it: it turns the transaction check-back service on or off.
	"checkTransactionMessageEnable",
	"aclEnable",
	"traceTopicEnable",
	"msgTraceTopicName",
	"enablePropertyFilter",
	"filterSupportRetry",
	"enableCalcFilterBitMap",
	"enableConsumeQueueExt",
	"clusterTopicEnable",
	"brokerTopicEnable",
	"transferMsgByHeap",
	"brokerFastFailureEnable",
	"waitTimeMillsInSendQueue",
	"waitTimeMillsInPullQueue",
	"waitTimeMillsInHeartbeatQueue",
	"waitTimeMillsInTransactionQueue",
	"sendThreadPoolQueueCapacity",
	"pullThreadPoolQueueCapacity",
	"queryMessageThreadPoolNums",
	"adminBrokerThreadPoolNums",
	"clientManageThreadPoolNums",
	"consumerManageThreadPoolNums",
	"heartbeatThreadPoolNums",
	"endTransactionThreadPoolNums",
	"isolateLogEnable",
	"messageDelayLevel",
	"flushDelayOffsetInterval",
	"transientStorePoolEnable",
	"transientStorePoolSize",
	"commitIntervalCommitLog",
	"commitCommitLogLeastPages",
	"commitCommitLogThoroughInterval",
	"flushCommitLogTimed",
	"useReentrantLockWhenPutMessage",
	"syncFlushTimeout",
	"slaveTimeout",
	"haSendHeartbeatInterval",
	"haHousekeepingInterval",
	"haTransferBatchSize",
	"haSlaveFallbehindMax",
	"haMasterAddress",
	"osPageCacheBusyTimeOutMills",
	"accessMessageInMemoryMaxRatio",
	"maxTransferBytesOnMessageInMemory",
	"maxTransferCountOnMessageInMemory",
	"maxTransferBytesOnMessageInDisk",
	"maxTransferCountOnMessageInDisk",
	"messageIndexEnable",
	"messageIndexSafe",
	"maxHashSlotNum",
	"maxIndexNum",
	"maxMsgsNumBatch",
	"defaultQueryMaxNum",
	"cleanResourceInterval",
	"deleteCommitLogFilesInterval",
	"deleteConsumeQueueFilesInterval",
	"cleanFileForciblyEnable",
	"checkCRCOnRecover",
	"warmMapedFileEnable",
	"offsetCheckInSlave",
	"duplicationEnable",
	"diskFallRecorded",
	"enableDLegerCommitLog",
	"dLegerGroup",
	"dLegerPeers",
	"dLegerSelfId",
	"putMsgIndexHightWater",
}

// RocketMQ 5's controller-mode keys of a broker that mqd does not act on
// (docs/controller.md, "Departures"); the ones it implements are registered
// by plugins/broker and ha.
var brokerControllerModeKeys = []string{
	"inSyncReplicas",
	"totalReplicas",
	"enableAutoInSyncReplicas",
	"haMaxGapNotInSync",
	"syncFromLastFile",
	"asyncLearner",
	"fetchControllerAddrByDnsLookup",
	"syncControllerMetadataPeriod",
	"sendHeartbeatTimeoutMillis",
	"enableSlaveActingMaster",
}

// ControllerConfig keys (controller.conf, or a namesrv.conf embedding a
// controller) that mqd's raft controller has no use for.
var controllerRocketMQKeys = []string{
	"controllerType",
	"scanInactiveMasterInterval",
	"electMasterMaxRetryCount",
	"mappedFileSize",
	"controllerThreadPoolNums",
	"controllerRequestThreadPoolQueueCapacity",
	"processReadEvent",
	"configBlackList",
	"metricsExporterType",
	"jRaftElectionTimeoutMs",
	"jRaftScanWaitTimeoutMs",
	"jRaftSnapshotIntervalSecs",
	"jRaftGroupId",
	"jRaftServerId",
	"jRaftInitConf",
	"jRaftControllerRPCAddr",
}

// NamesrvConfig, including the 5.x additions an operator may carry over.
var namesrvRocketMQKeys = []string{
	"rocketmqHome",
	"listenPort",
	"kvConfigPath",
	"configStorePath",
	"orderMessageEnable",
	"clusterTest",
	"productEnvName",
	"scanNotActiveBrokerInterval",
	"supportActingMaster",
	"returnOrderTopicConfigToBroker",
	"clientRequestThreadPoolNums",
}

// NettyServerConfig, applied to both roles.
var nettyServerRocketMQKeys = []string{
	"serverWorkerThreads",
	"serverSelectorThreads",
	"serverCallbackExecutorThreads",
	"serverOnewaySemaphoreValue",
	"serverAsyncSemaphoreValue",
	"serverChannelMaxIdleTimeSeconds",
	"serverSocketSndBufSize",
	"serverSocketRcvBufSize",
	"useEpollNativeSelector",
	"serverPooledByteBufAllocatorEnable",
}
