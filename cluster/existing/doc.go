// Package existing attaches strongcheck to a PostgreSQL cluster the user
// already runs, reached by connection strings (the "existing" backend).
//
// Nothing of the cluster is assumed: before the run, Discover reads from
// every node whether it is in recovery, its synchronous_standby_names,
// synchronous_commit, cluster_name, server version, timeline and LSNs, and
// the primary's pg_stat_replication; a cluster that is not exactly one
// primary with every other node a streaming standby of it is refused
// (ErrTopology, a user error).
//
// What strongcheck touches: the workloads' tables live in a schema of the
// run's own, strongcheck_<run>, created on the primary before the run and
// dropped at the end (unless Options.KeepTables); every connection sets
// search_path to it. Faults run only through the user's own shell commands
// (Options.Commands: kill, start, stop, pause, resume, partition, heal,
// rejoin), and only when Options.AllowFaults names the cluster; promotion
// through SQL (pg_promote, ALTER SYSTEM SET primary_conninfo) only with
// Options.AllowPromote. Because the backend sees no process and no network
// path of the user's machines, it implements cluster.SQLObserved: the
// nemesis verifies each fault from outside, through SQL.
//
// Passwords never appear on the command line: a DSN holding one is refused
// (ErrPassword). They come from STRONGCHECK_PASSWORD_<NODE> (the node name
// in upper case; STRONGCHECK_ADMIN_PASSWORD_<NODE> for an admin DSN), or
// PGPASSWORD, or a pgpass file (PGPASSFILE or ~/.pgpass), and are never
// logged or stored.
//
// Naming a cluster by its Kubernetes namespace is not built yet.
package existing
