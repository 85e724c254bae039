package server

import (
	"encoding/json"
)

// Cluster-wide answers of the admin API (docs/api.md, "Server admin"): in
// cluster mode /api/v1/admin/stats sums every live node's numbers, and the
// users list's "online" says whether the user has a connection on any
// node. Each asks the other nodes over the bus (cluster.NATS.Ask) and
// waits for every live node's answer, at most 1 s.

// Topics of the questions nodes ask each other.
const (
	topicStats  = "stats"  // this node's admin stats (no argument)
	topicOnline = "online" // which of these user names have a connection here (argument: the names)
)

// answerQuery answers another node's question.
func (s *Server) answerQuery(topic string, arg json.RawMessage) json.RawMessage {
	var out any
	switch topic {
	case topicStats:
		res, _, err := s.stats(&statsRate{local: true})
		if err != nil {
			return nil
		}
		out = res
	case topicOnline:
		var names []string
		if json.Unmarshal(arg, &names) != nil {
			return nil
		}
		on := []string{}
		for _, n := range names {
			if len(s.node.UserSessions(n)) > 0 {
				on = append(on, n)
			}
		}
		out = on
	default:
		return nil
	}
	b, err := json.Marshal(out)
	if err != nil {
		return nil
	}
	return b
}

// nodeStats is what a node answers to topicStats (the fields summed).
type nodeStats struct {
	Connections   float64            `json:"connections"`
	Channels      float64            `json:"channels"`
	Subscriptions float64            `json:"subscriptions"`
	Publications  float64            `json:"publications_total"`
	Slow          float64            `json:"slow_consumer_disconnects"`
	Transports    map[string]float64 `json:"transports"`
}

// addClusterStats adds the other live nodes' numbers to this node's and
// returns how many nodes answered (0 on a single node).
func (s *Server) addClusterStats(transports map[string]float64, channels, subs, pubs, slow *float64) int {
	if s.bus == nil {
		return 0
	}
	n := 0
	for _, a := range s.bus.nats.Ask(topicStats, nil) {
		var st nodeStats
		if json.Unmarshal(a, &st) != nil {
			continue
		}
		n++
		*channels += st.Channels
		*subs += st.Subscriptions
		*pubs += st.Publications
		*slow += st.Slow
		for k, v := range st.Transports {
			if _, ok := transports[k]; ok {
				transports[k] += v
			}
		}
	}
	return n
}

// onlineUsers returns which of names have a connection on this node or, in
// cluster mode, on any live node.
func (s *Server) onlineUsers(names []string) map[string]bool {
	on := map[string]bool{}
	for _, n := range names {
		if len(s.node.UserSessions(n)) > 0 {
			on[n] = true
		}
	}
	if s.bus == nil || len(names) == 0 {
		return on
	}
	arg, err := json.Marshal(names)
	if err != nil {
		return on
	}
	for _, a := range s.bus.nats.Ask(topicOnline, arg) {
		var remote []string
		if json.Unmarshal(a, &remote) == nil {
			for _, n := range remote {
				on[n] = true
			}
		}
	}
	return on
}
