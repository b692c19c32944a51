package bus

import (
	"context"
	"encoding/json"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// OpConsumer is the Violation.Op of a consumer an observer may not have: a
// push consumer delivering outside its own inbox (into an agent's
// subjects, say). The host deletes it.
const OpConsumer = "consumer"

// jsAudit is the part of nats-server's JetStream API audit advisory
// ($JS.EVENT.ADVISORY.API, server.JSAPIAudit) the guard reads.
type jsAudit struct {
	Client *struct {
		User string `json:"user"`
	} `json:"client"`
	Subject  string `json:"subject"`
	Request  string `json:"request"`
	Response string `json:"response"`
}

// guardConsumers watches the JetStream API calls on the run's stream and
// deletes every push consumer an observer makes that delivers anywhere
// but its own inbox: subject permissions cannot stop it (the deliver
// subject is in the request's body), and the server would publish the
// stream's events on it with the stream's rights, for example into an
// agent's observation subject. Each one is reported as a Violation
// (OpConsumer). The consumer exists from its creation until the host has
// read the advisory and deleted it (milliseconds), so a few events may
// reach its subject in between; they are the run's own events, never
// anything the observer wrote.
func (s *Server) guardConsumers(nc *nats.Conn, js jetstream.JetStream, stream string) (*nats.Subscription, error) {
	creates := []string{"$JS.API.CONSUMER.CREATE." + stream, "$JS.API.CONSUMER.DURABLE.CREATE." + stream}
	return nc.Subscribe("$JS.EVENT.ADVISORY.API", func(m *nats.Msg) {
		var a jsAudit
		if json.Unmarshal(m.Data, &a) != nil || a.Client == nil || !isObserverUser(a.Client.User) {
			return
		}
		if !strings.HasPrefix(a.Subject, creates[0]) && !strings.HasPrefix(a.Subject, creates[1]) {
			return
		}
		var req struct {
			Config struct {
				DeliverSubject string `json:"deliver_subject"`
			} `json:"config"`
		}
		var resp struct {
			Name string `json:"name"`
		}
		if json.Unmarshal([]byte(a.Request), &req) != nil || json.Unmarshal([]byte(a.Response), &resp) != nil {
			return
		}
		deliver := req.Config.DeliverSubject
		own := ObserverInboxPrefix(s.run, strings.TrimPrefix(a.Client.User, observerUserPrefix)) + "."
		if deliver == "" || strings.HasPrefix(deliver, own) || resp.Name == "" {
			return // a pull consumer, or push into its own inbox; or it was not created
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		err := js.DeleteConsumer(ctx, stream, resp.Name)
		reason := "push consumer " + resp.Name + " delivering outside the observer's inbox " + own + ">: deleted"
		if err != nil {
			reason = "push consumer " + resp.Name + " delivering outside the observer's inbox " + own + ">: delete failed: " + err.Error()
		}
		s.report(Violation{User: a.Client.User, Op: OpConsumer, Subject: deliver, Reason: reason})
	})
}
