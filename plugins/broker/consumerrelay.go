package broker

import (
	"context"
	"strconv"
	"sync"

	"github.com/mqd/mqd/protocols/remoting"
	"github.com/mqd/mqd/protocols/remoting/body"
	"github.com/mqd/mqd/storage/message"
)

// Admin requests the broker relays to a group's consumer clients (Java's
// Broker2Client.getConsumeStatus and AdminBrokerProcessor.consumeMessageDirectly):
// mqadmin getConsumerStatus asks every client of a group for its consume
// offsets; queryMsgById -g -d has one client consume a stored message again.

// handleGetConsumerStatus serves INVOKE_BROKER_TO_GET_CONSUMER_STATUS (223):
// ext topic, group, clientAddr (a clientId, optional: every client of the
// group when empty). Each client is asked with GET_CONSUMER_STATUS_FROM_CLIENT
// (221); the answer maps clientId to that client's queue offsets. A client
// that fails to answer is left out (and logged), as in Java.
func (b *Broker) handleGetConsumerStatus(_ *remoting.Conn, req *remoting.Command) *remoting.Command {
	r := extReader{req: req}
	topic := r.str("topic", true)
	group := r.str("group", true)
	if resp := r.failure(); resp != nil {
		return resp
	}
	only := req.Ext("clientAddr")
	info, ok := b.clients.ConsumerGroup(group)
	if !ok || len(info.Channels) == 0 {
		return remoting.NewResponse(remoting.SystemError, "No Any Consumer online in the consumer group: ["+group+"]")
	}
	out := body.GetConsumerStatusBody{
		MessageQueueTable: map[body.MessageQueue]int64{},
		ConsumerTable:     map[string]map[body.MessageQueue]int64{},
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	asked := map[string]bool{}
	for _, ch := range info.Channels {
		if (only != "" && ch.ClientID != only) || asked[ch.ClientID] {
			continue
		}
		asked[ch.ClientID] = true
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), callClientTimeout)
			defer cancel()
			resp, err := ch.Conn.Invoke(ctx, remoting.NewRequest(remoting.GetConsumerStatusFromClient,
				map[string]string{"topic": topic, "group": group}, nil))
			if err == nil && resp.Code != remoting.Success {
				err = &remoteError{resp.Code, resp.Remark}
			}
			var st *body.GetConsumerStatusBody
			if err == nil && len(resp.Body) > 0 {
				st, err = body.DecodeGetConsumerStatusBody(resp.Body)
			}
			if err != nil {
				b.log.Warn().Err(err).Str("group", group).Str("clientId", ch.ClientID).Msg("get consumer status from client failed")
				return
			}
			if st == nil {
				return
			}
			mu.Lock()
			out.ConsumerTable[ch.ClientID] = st.MessageQueueTable
			mu.Unlock()
		}()
	}
	wg.Wait()
	resp := remoting.NewResponse(remoting.Success, "")
	resp.Body = out.AppendFastjson(nil)
	return resp
}

// handleConsumeMessageDirectly serves CONSUME_MESSAGE_DIRECTLY (309): ext
// consumerGroup, clientId, msgId (an offsetMsgId). The stored record at the
// id's commit-log offset goes to that client with this broker's name, and
// the client's ConsumeMessageDirectlyResult comes back. Like Java, the
// address inside the id is not compared: a slave holds its master's records
// at the same offsets.
func (b *Broker) handleConsumeMessageDirectly(_ *remoting.Conn, req *remoting.Command) *remoting.Command {
	r := extReader{req: req}
	group := r.str("consumerGroup", true)
	clientID := r.str("clientId", true)
	msgID := r.str("msgId", true)
	if resp := r.failure(); resp != nil {
		return resp
	}
	_, off, err := message.ParseOffsetMsgID(msgID)
	if err != nil {
		return remoting.NewResponse(remoting.SystemError, "msgId "+strconv.Quote(msgID)+" is not an offsetMsgId: "+err.Error())
	}
	rec, err := b.store.ReadMessage(off)
	if err != nil {
		return remoting.NewResponse(remoting.SystemError, "can not find message by msgId "+msgID+" (commit-log offset "+
			strconv.FormatInt(off, 10)+"): "+err.Error())
	}
	relay := remoting.NewRequestFields(remoting.ConsumeMessageDirectly, req.ExtFields.Clone(1), rec)
	relay.SetExt("brokerName", b.cfg.BrokerName)
	return b.callConsumer(relay, group, clientID)
}
