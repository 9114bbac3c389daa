package clickhouse

import "fmt"

// Clusters. With SchemaOptions.Cluster set, every table gets its cluster
// form from its tableDef, here, by its placement:
//
//   - sharded (event tables, held rows, rejects, privacy counts, the
//     aggregates): a Replicated*MergeTree table <name>_local on every
//     server, one replica set per shard, and a Distributed table <name>
//     over them that queries read and inserts write (synchronously, so an
//     acknowledged insert is on a replica of every shard it touched).
//     Rows go to the shard the table's shardKey picks; the event tables
//     and their held rows shard by the event id, so a repeated event
//     lands where its first copy is: FINAL and uniqExact(event_id)
//     through the Distributed table stay exact, replicated deduplication
//     catches a repeated insert, and the held rows of a shard and their
//     public copies can be compared on the shard alone.
//   - everywhere (apps, revocations, erasures, salts, crash group status,
//     the migrations, the release log and slots): one Replicated table
//     <name> with a replica on every server of the cluster, so any
//     server reads them locally. Inserts go to the connected server and
//     replicate; a table with a quorum makes them wait for that many
//     replicas.
//
// DDL runs ON CLUSTER, except where ClickHouse 18.16 cannot (see alter
// and Client.dropPartition). A table added later needs a placement (the
// zero value, sharded, also needs a shardKey unless nothing inserts into
// it through its Distributed table), reads through t.name, and changes
// its data only through t.alter, Client.dropPartition and the insert
// helpers; nothing else is cluster-specific.

// placement is where a cluster keeps a table's rows.
type placement uint8

const (
	// sharded tables split their rows over the shards by shardKey.
	sharded placement = iota
	// everywhere tables have a full copy on every server.
	everywhere
)

// quorum is how many replicas an insert into a table placed everywhere
// waits for on a cluster.
type quorum uint8

const (
	// noQuorum acknowledges an insert once the connected server has it.
	noQuorum quorum = iota
	// quorumTwo waits for two replicas (or one on a one-server cluster):
	// a server lost right after the insert does not lose it, and readers
	// elsewhere catch up from a live copy.
	quorumTwo
	// quorumAll waits for every replica: once acknowledged, every server
	// has the row, as on a single server. Inserts fail while a server is
	// down.
	quorumAll
)

// onCluster returns the ON CLUSTER clause for o, with a leading space, or "".
func onCluster(o SchemaOptions) string {
	if o.Cluster == "" {
		return ""
	}
	return " ON CLUSTER " + o.Cluster
}

// storage returns the name of the table that holds t's data: t.name, or
// for a sharded table on a cluster t.name+"_local", behind a Distributed
// table named t.name.
func (t *tableDef) storage(o SchemaOptions) string {
	if t.storageName != "" {
		return t.storageName
	}
	if t.distributed(o) {
		return t.name + "_local"
	}
	return t.name
}

// distributed reports whether t has a Distributed table in front of its
// storage: a sharded table on a cluster.
func (t *tableDef) distributed(o SchemaOptions) bool {
	return o.Cluster != "" && t.placement == sharded
}

// engineClause returns t's ENGINE: its MergeTree engine with its
// arguments, or on a cluster the Replicated variant. A sharded table's
// replicas are the servers of one shard ({shard}, {replica}); a table
// placed everywhere has one replica on every server, named by both
// macros, since {replica} alone may repeat across shards. The paths name
// the cluster, so clusters that share a ZooKeeper do not collide.
func (t *tableDef) engineClause(o SchemaOptions) string {
	if o.Cluster == "" {
		return t.engine + "(" + t.engineArgs + ")"
	}
	args := ""
	if t.engineArgs != "" {
		args = ", " + t.engineArgs
	}
	return fmt.Sprintf("Replicated%s(%s, %s%s)", t.engine, quote(t.zooKeeperPath(o)), quote(t.replicaName()), args)
}

// zooKeeperPath is where the replicas of t's storage table meet.
func (t *tableDef) zooKeeperPath(o SchemaOptions) string {
	shard := "{shard}"
	if t.placement == everywhere {
		shard = "all"
	}
	return fmt.Sprintf("/clickhouse/tables/%s/%s/%s/%s", o.Cluster, shard, t.database, t.storage(o))
}

// replicaName is the replica name of a server in t's replica set.
func (t *tableDef) replicaName() string {
	if t.placement == everywhere {
		return "{shard}-{replica}"
	}
	return "{replica}"
}

// alter returns the ALTER TABLE statement with clause (e.g. "DELETE
// WHERE ...", "ADD COLUMN ...") for t's storage: ON CLUSTER for a sharded
// table, so every shard runs it and its replicas replicate it; for a
// table placed everywhere without it, since one replica's ALTER
// replicates to all (ON CLUSTER would run it once per shard). Not for
// DROP PARTITION, which 18.16 forwards from a replica that is not the
// leader to the leader as the user default, which the locked-down
// servers lack: see Client.dropPartition.
func (t *tableDef) alter(o SchemaOptions, clause string) string {
	on := onCluster(o)
	if t.placement == everywhere {
		on = ""
	}
	return fmt.Sprintf("ALTER TABLE %s.%s%s %s", t.database, t.storage(o), on, clause)
}
