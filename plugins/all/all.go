// Package all decides which built-in modules ship in the mqd binary: each blank
// import registers its modules from init(). all_test.go pins the expected set.
package all

import (
	_ "github.com/mqd/mqd/discovery/external" // discovery.<name> of every installed discovery plugin
	_ "github.com/mqd/mqd/discovery/namesrv"  // discovery.namesrv
	_ "github.com/mqd/mqd/discovery/nats"     // discovery.nats
	_ "github.com/mqd/mqd/discovery/static"   // discovery.static
	_ "github.com/mqd/mqd/ha"                 // ha.async, ha.sync, ha.insync
	_ "github.com/mqd/mqd/ha/external"        // ha.<name> of every installed replication plugin
	_ "github.com/mqd/mqd/kernel/admin"       // admin.http
	_ "github.com/mqd/mqd/plugins/broker"     // app.broker
	_ "github.com/mqd/mqd/plugins/controller" // app.controller
	_ "github.com/mqd/mqd/plugins/namesrv"    // app.namesrv
	_ "github.com/mqd/mqd/storage/badger"     // storage.badger
	_ "github.com/mqd/mqd/storage/commitlog"  // storage.commitlog
)
