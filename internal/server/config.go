package server

import (
	"fmt"

	"github.com/sori-dev/sori/internal/config"
	"github.com/sori-dev/sori/internal/hub"
)

// DefaultConfig is config.Default with the hub's default namespaces written
// out, so that a config file, a flag or a test can see and extend them.
func DefaultConfig() config.Config {
	c := config.Default()
	for _, ns := range hub.DefaultNamespaces() {
		c.Namespaces = append(c.Namespaces, config.Namespace{
			Name: ns.Name, HistorySize: ns.HistorySize, HistoryTTL: config.Duration(ns.HistoryTTL), Presence: ns.Presence,
			JoinLeave: ns.JoinLeave, Publish: ns.Publish, Subscribe: ns.Subscribe, Anonymous: ns.Anonymous,
			Conflate: ns.Conflate, MaxMessageSize: ns.MaxMessageSize,
		})
	}
	return c
}

// hubNamespaces converts configured namespaces for the hub, checking each.
// nil stays nil: the hub's defaults.
func hubNamespaces(nss []config.Namespace) ([]hub.Namespace, error) {
	if nss == nil {
		return nil, nil
	}
	out := make([]hub.Namespace, 0, len(nss))
	for _, n := range nss {
		ns := hub.Namespace{
			Name: n.Name, HistorySize: n.HistorySize, HistoryTTL: n.HistoryTTL.D(), Presence: n.Presence,
			JoinLeave: n.JoinLeave, Publish: n.Publish, Subscribe: n.Subscribe, Anonymous: n.Anonymous,
			Conflate: n.Conflate, MaxMessageSize: n.MaxMessageSize,
		}
		if err := ns.Validate(); err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
		out = append(out, ns)
	}
	return out, nil
}
