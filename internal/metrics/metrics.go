// Package metrics exposes Sori's Prometheus metrics. It implements the
// Metrics interfaces of hub and session, and (TURN) of the embedded TURN
// server, on one registry per server (no global registry, so tests can run
// many servers in one process). It must never import hub, session, transport,
// chat or server: they reach it through their own Metrics interfaces.
package metrics

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics holds every collector. It is safe for concurrent use.
type Metrics struct {
	reg *prometheus.Registry

	connections   *prometheus.GaugeVec
	connsTotal    *prometheus.CounterVec
	disconnects   *prometheus.CounterVec
	channels      prometheus.Gauge
	subscriptions prometheus.Gauge
	publications  prometheus.Counter
	deliveries    prometheus.Counter
	msgsIn        *prometheus.CounterVec
	bytesIn       *prometheus.CounterVec
	framesOut     *prometheus.CounterVec
	bytesOut      *prometheus.CounterVec
	writes        *prometheus.CounterVec
	commands      *prometheus.CounterVec
	errors        *prometheus.CounterVec
	slow          prometheus.Counter
	latency       prometheus.Histogram
	turn          *TURN

	// byTransport caches the per-transport label children (transport name →
	// *transportCounters): WithLabelValues hashes the label and takes a lock,
	// and Wrote runs on every write of every connection.
	byTransport sync.Map
}

// transportCounters are the label children of one transport.
type transportCounters struct {
	msgsIn, bytesIn, framesOut, bytesOut, writes prometheus.Counter
}

func (m *Metrics) transport(name string) *transportCounters {
	if c, ok := m.byTransport.Load(name); ok {
		return c.(*transportCounters)
	}
	c, _ := m.byTransport.LoadOrStore(name, &transportCounters{
		msgsIn: m.msgsIn.WithLabelValues(name), bytesIn: m.bytesIn.WithLabelValues(name),
		framesOut: m.framesOut.WithLabelValues(name), bytesOut: m.bytesOut.WithLabelValues(name),
		writes: m.writes.WithLabelValues(name),
	})
	return c.(*transportCounters)
}

// New returns metrics registered on a fresh registry, with Go runtime and
// process collectors.
func New() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	f := func(c prometheus.Collector) { m.reg.MustRegister(c) }
	m.connections = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "sori_connections", Help: "Open client connections by transport."}, []string{"transport"})
	m.connsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sori_connections_accepted_total", Help: "Connections accepted by transport."}, []string{"transport"})
	m.disconnects = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sori_disconnects_total", Help: "Closed connections by close code."}, []string{"code"})
	m.channels = prometheus.NewGauge(prometheus.GaugeOpts{Name: "sori_channels", Help: "Channels held in memory."})
	m.subscriptions = prometheus.NewGauge(prometheus.GaugeOpts{Name: "sori_subscriptions", Help: "Active subscriptions."})
	m.publications = prometheus.NewCounter(prometheus.CounterOpts{Name: "sori_publications_total", Help: "Publications accepted."})
	m.deliveries = prometheus.NewCounter(prometheus.CounterOpts{Name: "sori_deliveries_total", Help: "Publications enqueued to subscribers (fan-out)."})
	m.msgsIn = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sori_messages_in_total", Help: "Inbound protocol frames by transport."}, []string{"transport"})
	m.bytesIn = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sori_bytes_in_total", Help: "Inbound payload bytes by transport."}, []string{"transport"})
	m.framesOut = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sori_messages_out_total", Help: "Outbound frames written by transport."}, []string{"transport"})
	m.bytesOut = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sori_bytes_out_total", Help: "Outbound bytes written (with framing) by transport."}, []string{"transport"})
	m.writes = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sori_writes_total", Help: "Write calls; messages_out/writes is the coalescing factor."}, []string{"transport"})
	m.commands = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sori_commands_total", Help: "Client commands by op."}, []string{"op"})
	m.errors = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sori_command_errors_total", Help: "Error replies by protocol error code."}, []string{"code"})
	m.slow = prometheus.NewCounter(prometheus.CounterOpts{Name: "sori_slow_consumer_disconnects_total", Help: "Connections closed because their outbound queue overflowed."})
	m.latency = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "sori_publish_to_write_seconds",
		Help:    "From a publication's acceptance to the write that carried it (oldest publication of each write).",
		Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
	})
	for _, c := range []prometheus.Collector{m.connections, m.connsTotal, m.disconnects, m.channels, m.subscriptions,
		m.publications, m.deliveries, m.msgsIn, m.bytesIn, m.framesOut, m.bytesOut, m.writes, m.commands, m.errors,
		m.slow, m.latency, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})} {
		f(c)
	}
	m.turn = newTURN(m.reg)
	return m
}

// TURN returns the collectors of the embedded TURN server.
func (m *Metrics) TURN() *TURN { return m.turn }

// Registry returns the registry, so other packages can add their collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler { return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}) }

// Published implements hub.Metrics.
func (m *Metrics) Published(_ string, deliveries int) {
	m.publications.Inc()
	m.deliveries.Add(float64(deliveries))
}

// ChannelsChanged implements hub.Metrics.
func (m *Metrics) ChannelsChanged(delta int) { m.channels.Add(float64(delta)) }

// SubscriptionsChanged implements hub.Metrics.
func (m *Metrics) SubscriptionsChanged(delta int) { m.subscriptions.Add(float64(delta)) }

// ConnectionsChanged implements session.Metrics.
func (m *Metrics) ConnectionsChanged(transport string, delta int) {
	m.connections.WithLabelValues(transport).Add(float64(delta))
	if delta > 0 {
		m.connsTotal.WithLabelValues(transport).Add(float64(delta))
	}
}

// Received implements session.Metrics.
func (m *Metrics) Received(transport string, bytes int) {
	c := m.transport(transport)
	c.msgsIn.Inc()
	c.bytesIn.Add(float64(bytes))
}

// Wrote implements session.Metrics.
func (m *Metrics) Wrote(transport string, frames, bytes int) {
	c := m.transport(transport)
	c.writes.Inc()
	c.framesOut.Add(float64(frames))
	c.bytesOut.Add(float64(bytes))
}

// DeliveryLatency implements session.Metrics.
func (m *Metrics) DeliveryLatency(d time.Duration) { m.latency.Observe(d.Seconds()) }

// Command implements session.Metrics.
func (m *Metrics) Command(op string) { m.commands.WithLabelValues(op).Inc() }

// CommandError implements session.Metrics.
func (m *Metrics) CommandError(code int) { m.errors.WithLabelValues(strconv.Itoa(code)).Inc() }

// SlowConsumer implements session.Metrics.
func (m *Metrics) SlowConsumer() { m.slow.Inc() }

// Disconnected implements session.Metrics.
func (m *Metrics) Disconnected(code int) { m.disconnects.WithLabelValues(strconv.Itoa(code)).Inc() }
