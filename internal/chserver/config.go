package chserver

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"text/template"
	"time"

	"go.uber.org/zap"
)

// Defaults applied by Start to a zero field of Config.
const (
	// DefaultListenHost is the address the server listens on.
	DefaultListenHost = "127.0.0.1"
	// DefaultStartTimeout bounds how long Start waits for the server to
	// answer its first query.
	DefaultStartTimeout = 30 * time.Second
	// DefaultUser is the administrative user clients connect as.
	DefaultUser = "collector"
	// DefaultRestartBackoff is the pause before the first restart after a
	// failure; it doubles with every further failure within the window.
	DefaultRestartBackoff = time.Second
	// DefaultMaxRestartBackoff caps the pause between restarts.
	DefaultMaxRestartBackoff = 30 * time.Second
	// DefaultMaxFailures is how many failures within FailureWindow make
	// the supervisor give up.
	DefaultMaxFailures = 5
	// DefaultFailureWindow is how long a failure counts towards
	// MaxFailures.
	DefaultFailureWindow = 10 * time.Minute
)

// Defaults of Limits, the read-only user's limits.
const (
	// DefaultMaxExecutionTime is how long one query may run.
	DefaultMaxExecutionTime = 5 * time.Minute
	// DefaultMaxMemoryUsage is how much memory one query may use, bytes.
	DefaultMaxMemoryUsage = 2_000_000_000
	// DefaultMaxRowsToRead is how many rows one query may read.
	DefaultMaxRowsToRead = 1_000_000_000
	// DefaultMaxResultRows is how many rows a result may have.
	DefaultMaxResultRows = 10_000_000
	// DefaultMaxResultBytes is how large a result may be, bytes
	// (uncompressed, in memory).
	DefaultMaxResultBytes = 1_000_000_000
	// DefaultMaxConcurrentQueries is how many queries may run at once.
	DefaultMaxConcurrentQueries = 8
	// DefaultQueriesPerHour is how many queries may start in an hour.
	DefaultQueriesPerHour = 20_000
	// DefaultExecutionTimePerHour is how much query time may be spent in
	// an hour, all queries together.
	DefaultExecutionTimePerHour = time.Hour
)

// Constraints says whether the read-only user gets settings constraints.
type Constraints int

// The choices of Config.Constraints.
const (
	// ConstraintsAuto gives them on servers from ConstraintsVersion on.
	ConstraintsAuto Constraints = iota
	// ConstraintsOn tries them whatever the version says.
	ConstraintsOn
	// ConstraintsOff never gives them: no setting may be changed.
	ConstraintsOff
)

// Limits bound what the read-only user's queries cost: each query, and
// all of them within an hour (a quota whose interval starts on the hour).
// A zero field takes its default. The user cannot lift them: see
// Config.ReadOnlyUser.
type Limits struct {
	// MaxExecutionTime is how long one query may run (whole seconds,
	// at least 1); beyond it the query fails with code 159
	// (TIMEOUT_EXCEEDED). Default 5 minutes.
	MaxExecutionTime time.Duration
	// MaxMemoryUsage is how many bytes one query may use; beyond it the
	// query fails with code 241 (MEMORY_LIMIT_EXCEEDED). Default 2 GB.
	MaxMemoryUsage int64
	// MaxRowsToRead is how many rows one query may read; beyond it the
	// query fails with code 158 (TOO_MANY_ROWS). Default 1 billion.
	MaxRowsToRead int64
	// MaxResultRows and MaxResultBytes bound a query's result; beyond
	// either it fails with code 396 (TOO_MANY_ROWS_OR_BYTES). Defaults 10
	// million rows and 1 GB.
	MaxResultRows, MaxResultBytes int64
	// MaxConcurrentQueries is how many queries may run at once; more fail
	// with code 202 (TOO_MANY_SIMULTANEOUS_QUERIES). Default 8.
	MaxConcurrentQueries int
	// QueriesPerHour is how many queries may start within an hour; more
	// fail with code 201 (QUOTA_EXPIRED) until the next hour. Default
	// 20,000 (a dashboard of 10 panels refreshed every 5 s uses 7,200).
	// At least 2 on 18.16, which counts a query only after checking.
	QueriesPerHour int64
	// ExecutionTimePerHour is how much query time all queries together
	// may take within an hour; beyond it queries fail with code 201.
	// Default an hour.
	ExecutionTimePerHour time.Duration
}

// setDefaults fills in every zero field.
func (l *Limits) setDefaults() {
	l.MaxExecutionTime = cmp.Or(l.MaxExecutionTime, DefaultMaxExecutionTime)
	l.MaxMemoryUsage = cmp.Or(l.MaxMemoryUsage, DefaultMaxMemoryUsage)
	l.MaxRowsToRead = cmp.Or(l.MaxRowsToRead, DefaultMaxRowsToRead)
	l.MaxResultRows = cmp.Or(l.MaxResultRows, DefaultMaxResultRows)
	l.MaxResultBytes = cmp.Or(l.MaxResultBytes, DefaultMaxResultBytes)
	l.MaxConcurrentQueries = cmp.Or(l.MaxConcurrentQueries, DefaultMaxConcurrentQueries)
	l.QueriesPerHour = cmp.Or(l.QueriesPerHour, DefaultQueriesPerHour)
	l.ExecutionTimePerHour = cmp.Or(l.ExecutionTimePerHour, DefaultExecutionTimePerHour)
}

// validate reports what is wrong with l, defaults applied.
func (l Limits) validate() error {
	var errs []error
	if l.MaxExecutionTime < time.Second || l.MaxExecutionTime%time.Second != 0 {
		errs = append(errs, fmt.Errorf("Limits.MaxExecutionTime %v is not a whole number of seconds, at least 1", l.MaxExecutionTime))
	}
	if l.ExecutionTimePerHour < time.Second || l.ExecutionTimePerHour%time.Second != 0 {
		errs = append(errs, fmt.Errorf("Limits.ExecutionTimePerHour %v is not a whole number of seconds, at least 1", l.ExecutionTimePerHour))
	}
	for _, f := range []struct {
		name string
		v    int64
	}{{"MaxMemoryUsage", l.MaxMemoryUsage}, {"MaxRowsToRead", l.MaxRowsToRead}, {"MaxResultRows", l.MaxResultRows},
		{"MaxResultBytes", l.MaxResultBytes}, {"MaxConcurrentQueries", int64(l.MaxConcurrentQueries)}, {"QueriesPerHour", l.QueriesPerHour}} {
		if f.v < 0 {
			errs = append(errs, fmt.Errorf("Limits.%s %d is negative", f.name, f.v))
		}
	}
	return errors.Join(errs...)
}

// loopback are the networks users connect from unless told otherwise.
var loopback = []string{"127.0.0.1", "::1"}

// Config describes a managed ClickHouse server. DataDir is the only
// required field; Start fills in the defaults documented on each field.
//
// The server has no password-less user and no user named "default": User
// may do everything, from loopback addresses only, and ReadOnlyUser, if
// set, may only read ReadOnlyDatabases.
type Config struct {
	// Binary is the server executable, as a path or a name looked up on
	// PATH. "" auto-detects: "clickhouse-server" on PATH or in /usr/sbin,
	// else the single "clickhouse" binary of newer packages, which is run
	// as `clickhouse server`. See Available.
	Binary string
	// DataDir holds everything the server writes: the generated
	// config.xml and users.xml, the data, and the logs (DataDir/log). It
	// is created if missing and made accessible to its owner only (0700);
	// Stop removes nothing from it, so a server started again on the same
	// DataDir sees the same data.
	DataDir string
	// ListenHost is the one address all the server's ports (native and
	// HTTP; no other port is configured) listen on: a loopback IP address
	// such as "::1", or a wildcard ("0.0.0.0", "::") to expose the ports.
	// Even then User accepts connections from loopback addresses only,
	// and ReadOnlyUser from ReadOnlyNetworks. Default "127.0.0.1".
	ListenHost string
	// TCPPort is the native-protocol port; 0 picks a free port.
	TCPPort int
	// HTTPPort is the HTTP interface port; 0 picks a free port.
	HTTPPort int
	// StartTimeout bounds how long Start, and each restart, waits for the
	// server to answer; default 30s.
	StartTimeout time.Duration
	// User is the administrative user: it may read and write every
	// database, from loopback addresses only. Clients such as the
	// collector connect as it (see Server.User). It must be a plain
	// identifier other than "default" and ReadOnlyUser. Default
	// "collector".
	User string
	// Password is User's password; "" makes Start generate a random one
	// (see Server.Password). It is stored in users.xml only as its
	// SHA-256, and never logged.
	Password string
	// ReadOnlyUser, if not "", names an extra user whose profile has
	// readonly=1 (SELECT only: no INSERT, ALTER, CREATE or table
	// functions) and ReadOnlyLimits, which it cannot lift: on servers
	// before 23.8 (such as Debian's 18.16) it may change no setting at
	// all (one set to the value it has is accepted); on 23.8 and later it
	// may change the few settings BI tools send (max_execution_time,
	// max_result_rows and max_result_bytes up to the limits,
	// result_overflow_mode, output format and time zone settings) and no
	// other, and cannot read the system tables that show other users'
	// queries (system.processes). It must be a plain identifier other
	// than "default".
	ReadOnlyUser string
	// ReadOnlyPassword is ReadOnlyUser's password, required with it; it
	// is stored in users.xml only as its SHA-256.
	ReadOnlyPassword string
	// ReadOnlyDatabases, if not empty, are the only databases
	// ReadOnlyUser may read (users.xml allow_databases); others, such as
	// a private database of secrets, are refused to it.
	ReadOnlyDatabases []string
	// ReadOnlyNetworks are the IP addresses or CIDR prefixes ReadOnlyUser
	// may connect from. Default loopback: 127.0.0.1 and ::1.
	ReadOnlyNetworks []string
	// Constraints chooses whether ReadOnlyUser gets settings constraints:
	// ConstraintsAuto (the default) when the binary reports
	// ConstraintsVersion or later. If the server then does not let the
	// user log in with them, Start falls back to the users.xml without.
	Constraints Constraints
	// ReadOnlyLimits bound ReadOnlyUser's queries; zero fields take their
	// defaults (5 minutes, 2 GB, a billion rows read, 10 million rows or
	// 1 GB of result per query, 8 at once, 20,000 queries and an hour of
	// query time per hour).
	ReadOnlyLimits Limits
	// RestartBackoff is the pause before restarting a server that exited
	// unexpectedly; it doubles with every further failure within
	// FailureWindow, up to MaxRestartBackoff. Defaults 1s and 30s.
	RestartBackoff, MaxRestartBackoff time.Duration
	// MaxFailures is how many failures (unexpected exits, and restarts
	// that did not answer within StartTimeout) within FailureWindow make
	// the supervisor give up: the server then stays down and Done is
	// closed. 1 means never restart. Defaults 5 and 10 minutes.
	MaxFailures   int
	FailureWindow time.Duration
	// Cluster, if not nil, makes the server one node of a ClickHouse
	// cluster whose nodes all run on this machine (tests, make cluster):
	// see ClusterConfig. nil runs a standalone server.
	Cluster *ClusterConfig
	// Logger receives the server's lifecycle events and its stderr lines
	// (at debug level); nil logs nothing.
	Logger *zap.Logger
}

// ClusterConfig makes a managed server a node of a sharded, replicated
// cluster coordinated by ZooKeeper, with every node on this machine: the
// cluster's native addresses, the interserver port and ZooKeeper are
// loopback (or ListenHost) addresses. It adds to the configuration what a
// cluster needs and nothing else:
//
//   - remote_servers: the cluster Name with its Shards, each shard with
//     internal_replication (a Distributed table writes one replica, the
//     Replicated table copies it). Every replica entry names User and
//     Password: a distributed query or insert logs in to the other nodes
//     as User, since there is no password-less user to fall back on
//     (ClickHouse 18.16 has no cluster secret). Password must therefore
//     be the same on every node and given, not generated; it is written
//     to config.xml in clear, which is owner-only like DataDir.
//   - zookeeper and distributed_ddl (the queue of ON CLUSTER queries);
//   - macros: {cluster}, {shard} and {replica} for this node;
//   - an interserver HTTP port (replicas fetch parts from each other
//     there) on ListenHost, with interserver_http_credentials: replicas
//     authenticate fetches with InterserverUser and InterserverPassword,
//     which are not a ClickHouse user and cannot log in.
type ClusterConfig struct {
	// Name is the cluster's name in remote_servers, a plain identifier:
	// what ON CLUSTER and Distributed tables name.
	Name string
	// Shards lists every node's native-protocol address, "host:port",
	// shard by shard, replica by replica, as every node of the cluster
	// must list them. The node's own address must be among them.
	Shards [][]string
	// Shard and Replica are this node's {shard} and {replica} macros,
	// e.g. "01" and "r1": the paths of its Replicated tables in
	// ZooKeeper. Plain identifiers or digits.
	Shard, Replica string
	// ZooKeeper lists the coordination service's client addresses,
	// "host:port" (ZooKeeper or ClickHouse Keeper).
	ZooKeeper []string
	// ZooKeeperSessionTimeout is the session timeout the server asks
	// ZooKeeper for; default 30s, ClickHouse's own default. An outage
	// shorter than it keeps the session: replicated tables do not turn
	// read-only.
	ZooKeeperSessionTimeout time.Duration
	// InterserverPort is the interserver HTTP port, on ListenHost; 0
	// picks a free port.
	InterserverPort int
	// InterserverUser and InterserverPassword authenticate replicas to
	// each other's interserver port; the same on every node. The user
	// defaults to "interserver"; the password is required.
	InterserverUser, InterserverPassword string
}

// DefaultInterserverUser is ClusterConfig.InterserverUser's default.
const DefaultInterserverUser = "interserver"

// DefaultZooKeeperSessionTimeout is ClusterConfig.ZooKeeperSessionTimeout's
// default.
const DefaultZooKeeperSessionTimeout = 30 * time.Second

// macroRE matches shard and replica macros.
var macroRE = regexp.MustCompile(`^[A-Za-z0-9_]+$`)

// validate reports what is wrong with cc for a server listening on host
// with the administrative password password.
func (cc *ClusterConfig) validate(password string) []error {
	var errs []error
	if !identRE.MatchString(cc.Name) {
		errs = append(errs, fmt.Errorf("Cluster.Name %q is not a plain identifier", cc.Name))
	}
	if len(cc.Shards) == 0 {
		errs = append(errs, errors.New("Cluster.Shards is empty"))
	}
	for i, shard := range cc.Shards {
		if len(shard) == 0 {
			errs = append(errs, fmt.Errorf("Cluster.Shards[%d] has no replica", i))
		}
		for _, addr := range shard {
			if _, err := splitHostPort(addr); err != nil {
				errs = append(errs, fmt.Errorf("Cluster.Shards[%d]: %w", i, err))
			}
		}
	}
	if !macroRE.MatchString(cc.Shard) || !macroRE.MatchString(cc.Replica) {
		errs = append(errs, fmt.Errorf("Cluster.Shard %q and Cluster.Replica %q must be letters, digits or _", cc.Shard, cc.Replica))
	}
	if len(cc.ZooKeeper) == 0 {
		errs = append(errs, errors.New("Cluster.ZooKeeper is empty"))
	}
	for _, addr := range cc.ZooKeeper {
		if _, err := splitHostPort(addr); err != nil {
			errs = append(errs, fmt.Errorf("Cluster.ZooKeeper: %w", err))
		}
	}
	if cc.ZooKeeperSessionTimeout < 0 {
		errs = append(errs, fmt.Errorf("Cluster.ZooKeeperSessionTimeout %v is negative", cc.ZooKeeperSessionTimeout))
	}
	if cc.InterserverPort < 0 || cc.InterserverPort > 65535 {
		errs = append(errs, fmt.Errorf("Cluster.InterserverPort %d is out of range 0-65535", cc.InterserverPort))
	}
	if !identRE.MatchString(cc.InterserverUser) {
		errs = append(errs, fmt.Errorf("Cluster.InterserverUser %q is not a plain identifier", cc.InterserverUser))
	}
	if cc.InterserverPassword == "" {
		errs = append(errs, errors.New("Cluster.InterserverPassword is required"))
	}
	if password == "" {
		errs = append(errs, errors.New("Password is required with Cluster: every node logs in to the others as User"))
	}
	return errs
}

// hostPort is a host and a port.
type hostPort struct {
	Host string
	Port int
}

// splitHostPort parses addr, "host:port", with a port from 1 to 65535.
func splitHostPort(addr string) (hostPort, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return hostPort{}, fmt.Errorf("address %q: %w", addr, err)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 1 || p > 65535 || host == "" {
		return hostPort{}, fmt.Errorf("address %q: want host:port with a port from 1 to 65535", addr)
	}
	return hostPort{host, p}, nil
}

// identRE matches the user names Config accepts: they become XML element
// names in users.xml and identifiers in SQL.
var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// setDefaults fills in every zero field that has a default. It is the one
// place defaults are applied. Password is generated by Start, not here.
func (c *Config) setDefaults() {
	c.ListenHost = cmp.Or(c.ListenHost, DefaultListenHost)
	c.StartTimeout = cmp.Or(c.StartTimeout, DefaultStartTimeout)
	c.User = cmp.Or(c.User, DefaultUser)
	if len(c.ReadOnlyNetworks) == 0 {
		c.ReadOnlyNetworks = loopback
	}
	c.ReadOnlyLimits.setDefaults()
	c.RestartBackoff = cmp.Or(c.RestartBackoff, DefaultRestartBackoff)
	c.MaxRestartBackoff = cmp.Or(c.MaxRestartBackoff, DefaultMaxRestartBackoff)
	c.MaxFailures = cmp.Or(c.MaxFailures, DefaultMaxFailures)
	c.FailureWindow = cmp.Or(c.FailureWindow, DefaultFailureWindow)
	c.Logger = cmp.Or(c.Logger, zap.NewNop())
	if c.Cluster != nil {
		cc := *c.Cluster
		cc.InterserverUser = cmp.Or(cc.InterserverUser, DefaultInterserverUser)
		cc.ZooKeeperSessionTimeout = cmp.Or(cc.ZooKeeperSessionTimeout, DefaultZooKeeperSessionTimeout)
		c.Cluster = &cc
	}
}

// Validate reports whether c, once its defaults are applied, describes a
// server Start can run. It does not look for the binary; see Available.
func (c Config) Validate() error {
	c.setDefaults()
	var errs []error
	if c.DataDir == "" {
		errs = append(errs, errors.New("DataDir is required"))
	}
	if ip := net.ParseIP(c.ListenHost); ip == nil || !(ip.IsLoopback() || ip.IsUnspecified()) {
		errs = append(errs, fmt.Errorf("ListenHost %q is not a loopback or wildcard IP address", c.ListenHost))
	}
	for _, p := range []struct {
		name string
		port int
	}{{"TCPPort", c.TCPPort}, {"HTTPPort", c.HTTPPort}} {
		if p.port < 0 || p.port > 65535 {
			errs = append(errs, fmt.Errorf("%s %d is out of range 0-65535", p.name, p.port))
		}
	}
	if c.TCPPort != 0 && c.TCPPort == c.HTTPPort {
		errs = append(errs, fmt.Errorf("TCPPort and HTTPPort are both %d", c.TCPPort))
	}
	if cc := c.Cluster; cc != nil && cc.InterserverPort != 0 && (cc.InterserverPort == c.TCPPort || cc.InterserverPort == c.HTTPPort) {
		errs = append(errs, fmt.Errorf("Cluster.InterserverPort %d is also TCPPort or HTTPPort", cc.InterserverPort))
	}
	for _, d := range []struct {
		name string
		d    time.Duration
	}{{"StartTimeout", c.StartTimeout}, {"RestartBackoff", c.RestartBackoff}, {"MaxRestartBackoff", c.MaxRestartBackoff}, {"FailureWindow", c.FailureWindow}} {
		if d.d < 0 {
			errs = append(errs, fmt.Errorf("%s %v is negative", d.name, d.d))
		}
	}
	if c.MaxFailures < 0 {
		errs = append(errs, fmt.Errorf("MaxFailures %d is negative", c.MaxFailures))
	}
	if !identRE.MatchString(c.User) {
		errs = append(errs, fmt.Errorf("User %q is not a plain identifier", c.User))
	} else if c.User == "default" {
		errs = append(errs, errors.New(`User must not be "default": the managed server has no default user`))
	}
	if c.ReadOnlyUser != "" {
		switch {
		case !identRE.MatchString(c.ReadOnlyUser):
			errs = append(errs, fmt.Errorf("ReadOnlyUser %q is not a plain identifier", c.ReadOnlyUser))
		case c.ReadOnlyUser == "default":
			errs = append(errs, errors.New(`ReadOnlyUser must not be "default"`))
		case c.ReadOnlyUser == c.User:
			errs = append(errs, fmt.Errorf("ReadOnlyUser and User are both %q", c.User))
		}
		if c.ReadOnlyPassword == "" {
			errs = append(errs, errors.New("ReadOnlyPassword is required with ReadOnlyUser"))
		}
	} else if c.ReadOnlyPassword != "" || len(c.ReadOnlyDatabases) > 0 {
		errs = append(errs, errors.New("ReadOnlyPassword or ReadOnlyDatabases is set but ReadOnlyUser is empty"))
	}
	if c.Constraints < ConstraintsAuto || c.Constraints > ConstraintsOff {
		errs = append(errs, fmt.Errorf("Constraints %d is not ConstraintsAuto, ConstraintsOn or ConstraintsOff", c.Constraints))
	}
	if err := c.ReadOnlyLimits.validate(); err != nil {
		errs = append(errs, err)
	}
	for _, db := range c.ReadOnlyDatabases {
		if !identRE.MatchString(db) {
			errs = append(errs, fmt.Errorf("ReadOnlyDatabases: %q is not a plain identifier", db))
		}
	}
	for _, n := range c.ReadOnlyNetworks {
		if net.ParseIP(n) == nil {
			if _, _, err := net.ParseCIDR(n); err != nil {
				errs = append(errs, fmt.Errorf("ReadOnlyNetworks: %q is not an IP address or CIDR prefix", n))
			}
		}
	}
	if c.Cluster != nil {
		errs = append(errs, c.Cluster.validate(c.Password)...)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("chserver: invalid config: %w", err)
	}
	return nil
}

// layout holds the absolute paths of everything under DataDir.
type layout struct {
	Root, ConfigFile, UsersFile, Data, Tmp, UserFiles, FormatSchemas, LogDir, Log, ErrorLog string
}

func newLayout(dataDir string) (layout, error) {
	root, err := filepath.Abs(dataDir)
	if err != nil {
		return layout{}, fmt.Errorf("resolve DataDir: %w", err)
	}
	return layout{
		Root:          root,
		ConfigFile:    filepath.Join(root, "config.xml"),
		UsersFile:     filepath.Join(root, "users.xml"),
		Data:          filepath.Join(root, "data"),
		Tmp:           filepath.Join(root, "tmp"),
		UserFiles:     filepath.Join(root, "user_files"),
		FormatSchemas: filepath.Join(root, "format_schemas"),
		LogDir:        filepath.Join(root, "log"),
		Log:           filepath.Join(root, "log", "clickhouse-server.log"),
		ErrorLog:      filepath.Join(root, "log", "clickhouse-server.err.log"),
	}, nil
}

// dirs lists the directories the server expects to exist.
func (l layout) dirs() []string {
	return []string{l.Root, l.Data, l.Tmp, l.UserFiles, l.FormatSchemas, l.LogDir}
}

// configParams is what the config templates see.
type configParams struct {
	L                    layout
	ListenHost           string
	TCPPort, HTTPPort    int
	User, PasswordHash   string
	Loopback             []string
	ReadOnlyUser         string
	ReadOnlyPasswordHash string
	ReadOnlyDatabases    []string
	ReadOnlyNetworks     []string
	Limits               Limits
	// Modern selects what only servers from ConstraintsVersion on
	// understand: settings constraints the read-only user may change
	// within (changeable_in_readonly) and system tables behind grants.
	Modern bool
	// Cluster is set in cluster mode.
	Cluster *clusterParams
}

// clusterParams is what the config template sees of a ClusterConfig.
type clusterParams struct {
	Name                string
	Shards              [][]hostPort
	User, Password      string
	ZooKeeper           []hostPort
	SessionTimeoutMs    int64
	Shard, Replica      string
	InterserverHost     string
	InterserverPort     int
	InterserverUser     string
	InterserverPassword string
}

// newClusterParams returns the template's view of c.Cluster; c has its
// defaults, its password and its ports. interserverHost is the address
// other replicas fetch parts from.
func newClusterParams(c Config, interserverHost string) (*clusterParams, error) {
	cc := c.Cluster
	p := &clusterParams{
		Name: cc.Name, User: c.User, Password: c.Password,
		SessionTimeoutMs: cc.ZooKeeperSessionTimeout.Milliseconds(),
		Shard:            cc.Shard, Replica: cc.Replica,
		InterserverHost: interserverHost, InterserverPort: cc.InterserverPort,
		InterserverUser: cc.InterserverUser, InterserverPassword: cc.InterserverPassword,
	}
	for _, shard := range cc.Shards {
		var replicas []hostPort
		for _, addr := range shard {
			hp, err := splitHostPort(addr)
			if err != nil {
				return nil, err
			}
			replicas = append(replicas, hp)
		}
		p.Shards = append(p.Shards, replicas)
	}
	for _, addr := range cc.ZooKeeper {
		hp, err := splitHostPort(addr)
		if err != nil {
			return nil, err
		}
		p.ZooKeeper = append(p.ZooKeeper, hp)
	}
	return p, nil
}

// The root element is <yandex>: ClickHouse 18.16 requires it and current
// releases still accept it (they also accept <clickhouse>, which 18.16
// does not). Only keys both understand are used. Directory paths end in a
// slash, which both require.
//
// Exactly two ports are configured, both on listen_host: no
// interserver_http_port, mysql_port, postgresql_port, grpc_port or
// prometheus port, so no other port is opened. No system log tables
// (query_log, query_thread_log, part_log, text_log, trace_log) are
// configured, so query text is not kept in tables, and the server log
// is at warning level: it holds no query text but that of failed queries.
// No dictionaries are configured, and remote_servers, zookeeper, macros
// and an interserver port only in cluster mode (ClusterConfig), where the
// interserver port listens on listen_host too.
//
// The uncompressed cache is off: its size is 0 and the profiles set
// use_uncompressed_cache=0. The mark cache is 256 MiB instead of 5 GiB;
// in cluster mode, where several servers share one machine, 64 MiB, with
// 4 background merge threads instead of 16.
const configTemplate = `<?xml version="1.0"?>
<!-- Generated by chserver; rewritten on every start. -->
<yandex>
  <logger>
    <level>warning</level>
    <log>{{x .L.Log}}</log>
    <errorlog>{{x .L.ErrorLog}}</errorlog>
    <size>10M</size>
    <count>2</count>
    <console>1</console>
  </logger>
  <listen_host>{{x .ListenHost}}</listen_host>
  <tcp_port>{{.TCPPort}}</tcp_port>
  <http_port>{{.HTTPPort}}</http_port>
  <path>{{x .L.Data}}/</path>
  <tmp_path>{{x .L.Tmp}}/</tmp_path>
  <user_files_path>{{x .L.UserFiles}}/</user_files_path>
  <format_schema_path>{{x .L.FormatSchemas}}/</format_schema_path>
  <users_config>{{x .L.UsersFile}}</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <timezone>UTC</timezone>
  <mark_cache_size>{{if .Cluster}}67108864{{else}}268435456{{end}}</mark_cache_size>
  <uncompressed_cache_size>0</uncompressed_cache_size>
  <max_concurrent_queries>50</max_concurrent_queries>
  <max_connections>256</max_connections>
  <keep_alive_timeout>3</keep_alive_timeout>
{{- if .Modern}}
  <access_control_improvements>
    <settings_constraints_replace_previous>true</settings_constraints_replace_previous>
    <select_from_system_db_requires_grant>true</select_from_system_db_requires_grant>
    <select_from_information_schema_requires_grant>true</select_from_information_schema_requires_grant>
  </access_control_improvements>
{{- end}}
{{- with .Cluster}}
  <interserver_http_host>{{x .InterserverHost}}</interserver_http_host>
  <interserver_http_port>{{.InterserverPort}}</interserver_http_port>
  <interserver_http_credentials>
    <user>{{x .InterserverUser}}</user>
    <password>{{x .InterserverPassword}}</password>
  </interserver_http_credentials>
  <remote_servers>
    <{{.Name}}>
{{- range .Shards}}
      <shard>
        <internal_replication>true</internal_replication>
{{- range .}}
        <replica>
          <host>{{x .Host}}</host>
          <port>{{.Port}}</port>
          <user>{{x $.Cluster.User}}</user>
          <password>{{x $.Cluster.Password}}</password>
        </replica>
{{- end}}
      </shard>
{{- end}}
    </{{.Name}}>
  </remote_servers>
  <zookeeper>
{{- range .ZooKeeper}}
    <node>
      <host>{{x .Host}}</host>
      <port>{{.Port}}</port>
    </node>
{{- end}}
    <session_timeout_ms>{{.SessionTimeoutMs}}</session_timeout_ms>
  </zookeeper>
  <distributed_ddl>
    <path>/clickhouse/task_queue/ddl</path>
  </distributed_ddl>
  <macros>
    <cluster>{{.Name}}</cluster>
    <shard>{{.Shard}}</shard>
    <replica>{{.Replica}}</replica>
  </macros>
{{- end}}
</yandex>
`

// usersTemplate defines no user named default: a client that names no
// user, or default, is refused. access_management=0 keeps current
// releases from letting any user manage SQL users and grants; 18.16
// ignores it.
//
// The read-only profile: readonly=1 forbids writes, DDL, SET and (on
// 18.16) every table function, so remote(), url(), file(), merge() and
// cluster() cannot reach the private database; on current releases
// readonly=1 forbids remote(), url() and file(), and merge() reads only
// what the user may read. The limits (Limits) throw when exceeded, so a
// truncated result is never taken for a whole one. On 18.16 nothing else
// can be changed: a setting sent with a query is refused unless it has
// the profile's value. Modern servers get constraints instead: the few
// settings BI tools send may be changed even in readonly mode
// (changeable_in_readonly), within the limits (min 1, so 0, "unlimited",
// is refused), and every other setting stays fixed; config.xml then puts
// the system tables behind grants (select_from_system_db_requires_grant),
// so the read-only user, which has grants on its databases only, cannot
// read system.processes and other users' query text.
const usersTemplate = `<?xml version="1.0"?>
<!-- Generated by chserver; rewritten on every start. -->
<yandex>
  <profiles>
    <default>
      <max_memory_usage>2000000000</max_memory_usage>
      <use_uncompressed_cache>0</use_uncompressed_cache>
{{- if .Cluster}}
      <background_pool_size>4</background_pool_size>
{{- end}}
    </default>
    <readonly>
      <readonly>1</readonly>
      <max_memory_usage>{{.Limits.MaxMemoryUsage}}</max_memory_usage>
      <max_execution_time>{{seconds .Limits.MaxExecutionTime}}</max_execution_time>
      <timeout_overflow_mode>throw</timeout_overflow_mode>
      <max_rows_to_read>{{.Limits.MaxRowsToRead}}</max_rows_to_read>
      <read_overflow_mode>throw</read_overflow_mode>
      <max_result_rows>{{.Limits.MaxResultRows}}</max_result_rows>
      <max_result_bytes>{{.Limits.MaxResultBytes}}</max_result_bytes>
      <result_overflow_mode>throw</result_overflow_mode>
      <max_concurrent_queries_for_user>{{.Limits.MaxConcurrentQueries}}</max_concurrent_queries_for_user>
      <use_uncompressed_cache>0</use_uncompressed_cache>
{{- if .Modern}}
      <constraints>
        <max_execution_time>
          <min>1</min>
          <max>{{seconds .Limits.MaxExecutionTime}}</max>
          <changeable_in_readonly/>
        </max_execution_time>
        <max_result_rows>
          <min>1</min>
          <max>{{.Limits.MaxResultRows}}</max>
          <changeable_in_readonly/>
        </max_result_rows>
        <max_result_bytes>
          <min>1</min>
          <max>{{.Limits.MaxResultBytes}}</max>
          <changeable_in_readonly/>
        </max_result_bytes>
        <result_overflow_mode>
          <changeable_in_readonly/>
        </result_overflow_mode>
        <output_format_json_quote_64bit_integers>
          <changeable_in_readonly/>
        </output_format_json_quote_64bit_integers>
        <output_format_json_quote_denormals>
          <changeable_in_readonly/>
        </output_format_json_quote_denormals>
        <date_time_output_format>
          <changeable_in_readonly/>
        </date_time_output_format>
        <session_timezone>
          <changeable_in_readonly/>
        </session_timezone>
      </constraints>
{{- end}}
    </readonly>
  </profiles>
  <users>
    <{{.User}}>
      <password_sha256_hex>{{.PasswordHash}}</password_sha256_hex>
      <networks>
{{- range .Loopback}}
        <ip>{{.}}</ip>
{{- end}}
      </networks>
      <profile>default</profile>
      <quota>default</quota>
      <access_management>0</access_management>
    </{{.User}}>
{{- if .ReadOnlyUser}}
    <{{.ReadOnlyUser}}>
      <password_sha256_hex>{{.ReadOnlyPasswordHash}}</password_sha256_hex>
      <networks>
{{- range .ReadOnlyNetworks}}
        <ip>{{x .}}</ip>
{{- end}}
      </networks>
      <profile>readonly</profile>
      <quota>readonly</quota>
      <access_management>0</access_management>
{{- if .ReadOnlyDatabases}}
      <allow_databases>
{{- range .ReadOnlyDatabases}}
        <database>{{.}}</database>
{{- end}}
      </allow_databases>
{{- end}}
    </{{.ReadOnlyUser}}>
{{- end}}
  </users>
  <quotas>
    <default>
      <interval>
        <duration>3600</duration>
        <queries>0</queries>
        <errors>0</errors>
        <result_rows>0</result_rows>
        <read_rows>0</read_rows>
        <execution_time>0</execution_time>
      </interval>
    </default>
    <readonly>
      <interval>
        <duration>3600</duration>
        <queries>{{if .Modern}}{{.Limits.QueriesPerHour}}{{else}}{{legacyQueries .Limits.QueriesPerHour}}{{end}}</queries>
        <errors>0</errors>
        <result_rows>0</result_rows>
        <read_rows>0</read_rows>
        <execution_time>{{seconds .Limits.ExecutionTimePerHour}}</execution_time>
      </interval>
    </readonly>
  </quotas>
</yandex>
`

// templates holds config.xml and users.xml; it is never modified.
var templates = template.Must(template.Must(template.New("config.xml").
	Funcs(template.FuncMap{"x": xmlEscape, "seconds": seconds, "legacyQueries": legacyQueries}).
	Parse(configTemplate)).
	New("users.xml").Parse(usersTemplate))

// seconds returns d in whole seconds.
func seconds(d time.Duration) int64 { return int64(d / time.Second) }

// legacyQueries returns the quota's queries value that makes 18.16 refuse
// the query after the n-th: 18.16 checks the count before it counts the
// query, so it lets one more query run than the value it is given (0
// would mean no limit, so 1 is the least).
func legacyQueries(n int64) int64 { return max(n-1, 1) }

// xmlEscape escapes s for use as XML character data.
func xmlEscape(s string) (string, error) {
	var b strings.Builder
	if err := xml.EscapeText(&b, []byte(s)); err != nil {
		return "", fmt.Errorf("escape %q: %w", s, err)
	}
	return b.String(), nil
}

// sha256Hex returns the hex SHA-256 of password, as users.xml's
// password_sha256_hex wants it.
func sha256Hex(password string) string {
	sum := sha256.Sum256([]byte(password))
	return hex.EncodeToString(sum[:])
}

// usersNetworks returns networks as users.xml's <ip> elements take them.
// ClickHouse 18.16 mis-matches IPv4 CIDR prefixes: an entry such as
// 10.0.0.0/8 admits every client, loopback included. IPv4 prefixes are
// therefore written in their IPv4-mapped IPv6 form (::ffff:10.0.0.0/104),
// which 18.16 and current releases match correctly; addresses and IPv6
// prefixes are written as given.
func usersNetworks(networks []string) []string {
	out := make([]string, len(networks))
	for i, n := range networks {
		out[i] = n
		if _, prefix, err := net.ParseCIDR(n); err == nil && len(prefix.Mask) == net.IPv4len {
			ones, _ := prefix.Mask.Size()
			out[i] = fmt.Sprintf("::ffff:%s/%d", prefix.IP.To4(), 96+ones)
		}
	}
	return out
}

// writeConfig creates the directories under l, owner-only, and writes
// config.xml and users.xml for c (with defaults applied, the password set
// and ports chosen); modern selects the users.xml of servers from
// ConstraintsVersion on.
func writeConfig(l layout, c Config, modern bool) error {
	for _, d := range l.dirs() {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return fmt.Errorf("create %s: %w", d, err)
		}
	}
	// DataDir may predate this version, or have been made by someone
	// else: it holds the data and users.xml, so close it to others.
	if err := os.Chmod(l.Root, 0o700); err != nil {
		return fmt.Errorf("restrict %s: %w", l.Root, err)
	}
	p := configParams{
		L:                 l,
		ListenHost:        c.ListenHost,
		TCPPort:           c.TCPPort,
		HTTPPort:          c.HTTPPort,
		User:              c.User,
		PasswordHash:      sha256Hex(c.Password),
		Loopback:          loopback,
		ReadOnlyUser:      c.ReadOnlyUser,
		ReadOnlyDatabases: c.ReadOnlyDatabases,
		ReadOnlyNetworks:  usersNetworks(c.ReadOnlyNetworks),
		Limits:            c.ReadOnlyLimits,
		Modern:            modern,
	}
	if c.ReadOnlyUser != "" {
		p.ReadOnlyPasswordHash = sha256Hex(c.ReadOnlyPassword)
	}
	if c.Cluster != nil {
		cp, err := newClusterParams(c, dialAddress(c.ListenHost))
		if err != nil {
			return err
		}
		p.Cluster = cp
	}
	for _, f := range []struct{ name, path string }{
		{"config.xml", l.ConfigFile},
		{"users.xml", l.UsersFile},
	} {
		if err := writeTemplate(f.path, f.name, p); err != nil {
			return err
		}
	}
	return nil
}

func writeTemplate(path, name string, p configParams) (err error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	defer func() {
		if cerr := f.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("write %s: %w", name, cerr)
		}
	}()
	if err := templates.ExecuteTemplate(io.Writer(f), name, p); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	return nil
}
