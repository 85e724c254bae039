// Package clustertest runs Sori as a real cluster and checks it the way a
// user meets it: three `sori serve` child processes on one PostgreSQL
// database (SORI_TEST_POSTGRES) and one NATS server embedded in the test
// process, behind the non-sticky balancer of internal/tools/lb, driven by
// real WebSocket and HTTP-fallback clients. Its tests kill nodes with
// SIGKILL under load and judge what the clients saw with a Jepsen-style
// checker (Check): every acknowledged publication delivered exactly once to
// every reader, readers agreeing on offset→payload, offsets contiguous within
// an epoch. Besides kill -9 the chaos cases stop a node with SIGSTOP past the
// liveness timeout, restart NATS, cut PostgreSQL's connections during group
// commit, drop and reorder bus messages (a fault-injecting proxy between the
// nodes and NATS) and race 10,000 subscribes against publications on another
// node. The one-kill case is part of `make test`; the rest runs with
// SORI_TEST_CLUSTER=1 (`make test-cluster`; docs/operations.md, "Cluster
// mode").
//
// It must never import server, session, hub or chat: the nodes are child
// processes and everything is seen from outside, as a client sees it.
package clustertest
