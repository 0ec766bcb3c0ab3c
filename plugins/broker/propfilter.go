package broker

import (
	"sync"
	"unsafe"

	"github.com/mqd/mqd/kernel/config"
	"github.com/mqd/mqd/plugins/broker/sqlfilter"
	"github.com/mqd/mqd/protocols/remoting"
	"github.com/mqd/mqd/storage"
	"github.com/mqd/mqd/storage/message"
)

func init() {
	config.Register(config.Key{
		Path: "broker.enablePropertyFilter", Role: "broker", RocketMQ: []string{"enablePropertyFilter"},
		Default: false, Doc: "allow consumers to select messages with SQL92 expressions over properties",
	})
}

// sqlCacheMax bounds the compiled-expression cache; past it the cache is
// emptied and refilled by the expressions still in use.
const sqlCacheMax = 1024

type sqlEntry struct {
	expr *sqlfilter.Expr
	err  error
}

// sqlFilterCache compiles each distinct SQL92 expression once (Java keeps a
// parse cache keyed by the text too), failures included, so a subscription
// is not parsed again per pull. Compiled expressions are immutable.
type sqlFilterCache struct {
	mu sync.RWMutex
	m  map[string]*sqlEntry
}

// sqlFilters is process-wide, like Java's parse cache: compiling is a pure
// function of the text, so brokers in one process may share it.
var sqlFilters sqlFilterCache

func (c *sqlFilterCache) get(expr string) *sqlEntry {
	c.mu.RLock()
	e := c.m[expr]
	c.mu.RUnlock()
	if e != nil {
		return e
	}
	x, err := sqlfilter.Compile(expr)
	e = &sqlEntry{expr: x, err: err}
	c.mu.Lock()
	if c.m == nil || len(c.m) >= sqlCacheMax {
		c.m = make(map[string]*sqlEntry, 64)
	}
	c.m[expr] = e
	c.mu.Unlock()
	return e
}

// sqlFilter is the storage.Filter of an SQL92 subscription: every consume-queue
// entry is a candidate and the record's properties decide (Java's
// ExpressionMessageFilter without the bloom-filter bitmap).
type sqlFilter struct{ expr *sqlfilter.Expr }

// MatchTagsCode implements storage.Filter.
func (sqlFilter) MatchTagsCode(int64) bool { return true }

// MatchRecord implements storage.Filter. The property bytes are viewed as a
// string without copying: the record stays valid for the call and the
// evaluator keeps nothing.
func (f sqlFilter) MatchRecord(rec []byte) bool {
	props := message.RecordPropertiesBytes(rec)
	return f.expr.MatchProps(unsafe.String(unsafe.SliceData(props), len(props)))
}

// compileSQLFilter resolves an SQL92 subscription to its filter, in Java's
// order of checks: an expression that does not compile answers parseFail
// (SUBSCRIPTION_PARSE_FAILED for a pull carrying its subscription,
// FILTER_DATA_NOT_EXIST for one using the heartbeat's), then a broker without
// enablePropertyFilter refuses SQL92 altogether.
func (b *Broker) compileSQLFilter(group, topic, exprType, expr string, parseFail int16) (storage.Filter, *remoting.Command) {
	if exprType != exprTypeSQL92 {
		return nil, remoting.NewResponse(parseFail, "unknown subscription expression type "+exprType+" (TAG or SQL92)")
	}
	e := sqlFilters.get(expr)
	if e.err != nil {
		b.log.Debug().Str("group", group).Str("topic", topic).Err(e.err).Msg("SQL92 subscription does not compile")
		remark := "parse the consumer's subscription failed: " + e.err.Error()
		if parseFail == remoting.FilterDataNotExist {
			remark = "The broker's consumer filter data is not exist!Your expression may be wrong! " + e.err.Error()
		}
		return nil, remoting.NewResponse(parseFail, remark)
	}
	if !b.cfg.EnablePropertyFilter {
		return nil, unsupportedFilter(exprType)
	}
	return sqlFilter{e.expr}, nil
}
