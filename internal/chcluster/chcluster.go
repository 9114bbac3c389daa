// Package chcluster runs a ClickHouse cluster on one machine: a ZooKeeper
// server (Debian's zookeeper package) and shards × replicas ClickHouse
// servers (package chserver, in cluster mode), each in its own folder on
// loopback ports. The integration tests start one per test package, and
// `make cluster` (scripts/cluster.sh, cmd/consentry cluster) one for
// users to try.
//
// Every server is locked down as the collector's managed server is: no
// password-less user, the administrative user (and optional read-only
// user) from loopback only. The servers log in to each other as the
// administrative user, so its password is the same on all of them, and
// replicas authenticate part fetches with a second, interserver password.
// Both are generated unless given.
//
//	c, err := chcluster.Start(ctx, chcluster.Config{Dir: dir})
//	defer c.Stop(ctx)
//	cfg := clickhouse.Config{Addr: c.Addr(0, 0), Username: c.User(), Password: c.Password(),
//		Schema: clickhouse.SchemaOptions{Cluster: c.Name()}}
package chcluster

import (
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"go.uber.org/zap"

	"github.com/consentry/consentry/internal/chserver"
)

// Defaults of Config.
const (
	// DefaultName is the cluster's name in remote_servers.
	DefaultName = "consentry"
	// DefaultShards and DefaultReplicas are the topology: 2 shards of 2
	// replicas.
	DefaultShards   = 2
	DefaultReplicas = 2
	// DefaultHost is the loopback address every port listens on.
	DefaultHost = "127.0.0.1"
)

// Config describes a local cluster. Dir is the only required field.
type Config struct {
	// Dir holds everything: zookeeper/ and one folder per server,
	// s<shard>r<replica>/ (both counted from 1). Stop removes nothing.
	Dir string
	// Name is the cluster's name; default DefaultName.
	Name string
	// Shards and Replicas (per shard); defaults 2 and 2.
	Shards, Replicas int
	// Host is the loopback address of every port; default 127.0.0.1.
	Host string
	// User and Password are the administrative user every server has,
	// which clients and the servers themselves log in as; the password
	// is generated if empty. Default user: chserver.DefaultUser.
	User, Password string
	// InterserverPassword authenticates replicas' part fetches; generated
	// if empty.
	InterserverPassword string
	// ReadOnlyUser, ReadOnlyPassword and ReadOnlyDatabases give every
	// server a read-only user, as chserver.Config does.
	ReadOnlyUser, ReadOnlyPassword string
	ReadOnlyDatabases              []string
	// Binary is the ClickHouse server binary; "" auto-detects.
	Binary string
	// Logger receives the servers' and ZooKeeper's events.
	Logger *zap.Logger
}

func (c *Config) setDefaults() {
	c.Name = cmp.Or(c.Name, DefaultName)
	c.Shards = cmp.Or(c.Shards, DefaultShards)
	c.Replicas = cmp.Or(c.Replicas, DefaultReplicas)
	c.Host = cmp.Or(c.Host, DefaultHost)
	c.User = cmp.Or(c.User, chserver.DefaultUser)
	c.Password = cmp.Or(c.Password, rand.Text())
	c.InterserverPassword = cmp.Or(c.InterserverPassword, rand.Text())
	c.Logger = cmp.Or(c.Logger, zap.NewNop())
}

// Available reports whether ClickHouse, java and ZooKeeper are installed.
func Available() error {
	if _, _, err := chserver.Available(""); err != nil {
		return err
	}
	return ZooKeeperAvailable(ZooKeeperConfig{})
}

// Cluster is a running local cluster.
type Cluster struct {
	cfg     Config
	zk      *ZooKeeper
	servers [][]*chserver.Server // [shard][replica]
	addrs   [][]string

	stopOnce sync.Once
	stopErr  error
}

// Start starts ZooKeeper, then every server (at the same time), and
// returns once all of them serve. On failure it stops what it started.
func Start(ctx context.Context, cfg Config) (_ *Cluster, err error) {
	cfg.setDefaults()
	if cfg.Dir == "" {
		return nil, errors.New("chcluster: Dir is required")
	}
	if cfg.Shards < 1 || cfg.Replicas < 1 {
		return nil, fmt.Errorf("chcluster: %d shards of %d replicas: want at least 1 of 1", cfg.Shards, cfg.Replicas)
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("chcluster: %w", err)
	}
	c := &Cluster{cfg: cfg}
	defer func() {
		if err != nil {
			_ = c.Stop(context.WithoutCancel(ctx))
		}
	}()
	if c.zk, err = StartZooKeeper(ctx, ZooKeeperConfig{
		DataDir: filepath.Join(cfg.Dir, "zookeeper"), Host: cfg.Host, Logger: cfg.Logger,
	}); err != nil {
		return nil, err
	}
	n := cfg.Shards * cfg.Replicas
	// Every server lists every native port in remote_servers, so all are
	// chosen before any server starts, with the HTTP and interserver
	// ports, all at once so none repeats.
	ports, err := chserver.FreePorts(cfg.Host, 3*n)
	if err != nil {
		return nil, fmt.Errorf("chcluster: %w", err)
	}
	c.addrs = make([][]string, cfg.Shards)
	for s := range cfg.Shards {
		for r := range cfg.Replicas {
			c.addrs[s] = append(c.addrs[s], net.JoinHostPort(cfg.Host, strconv.Itoa(ports[3*(s*cfg.Replicas+r)])))
		}
	}
	c.servers = make([][]*chserver.Server, cfg.Shards)
	for s := range c.servers {
		c.servers[s] = make([]*chserver.Server, cfg.Replicas)
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for s := range cfg.Shards {
		for r := range cfg.Replicas {
			i := 3 * (s*cfg.Replicas + r)
			sc := c.serverConfig(s, r, ports[i], ports[i+1], ports[i+2])
			wg.Go(func() {
				srv, err := chserver.Start(ctx, sc)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					errs = append(errs, fmt.Errorf("shard %d replica %d: %w", s+1, r+1, err))
					return
				}
				c.servers[s][r] = srv
			})
		}
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("chcluster: %w", err)
	}
	if err := c.waitCoordinated(ctx); err != nil {
		return nil, err
	}
	cfg.Logger.Info("cluster up", zap.String("cluster", cfg.Name), zap.Int("shards", cfg.Shards),
		zap.Int("replicas", cfg.Replicas), zap.String("zookeeper", c.zk.Addr()))
	return c, nil
}

// waitCoordinated waits until every server reads from ZooKeeper. 18.16
// sometimes dies of a null pointer in its ZooKeeper client
// (zkutil::ZooKeeper::createImpl) at the first request after it started;
// its supervisor starts it again, and the cluster is returned once every
// server has come through its first request.
func (c *Cluster) waitCoordinated(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for s := range c.cfg.Shards {
		for r := range c.cfg.Replicas {
			wg.Go(func() {
				if err := c.waitZooKeeper(ctx, s, r); err != nil {
					mu.Lock()
					errs = append(errs, fmt.Errorf("shard %d replica %d: %w", s+1, r+1, err))
					mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("chcluster: servers do not reach ZooKeeper: %w", err)
	}
	return nil
}

// waitZooKeeper waits until shard's replica answers a query of
// system.zookeeper.
func (c *Cluster) waitZooKeeper(ctx context.Context, shard, replica int) error {
	conn, err := clickhouse.Open(&clickhouse.Options{
		Addr: []string{c.Addr(shard, replica)}, Auth: clickhouse.Auth{Username: c.cfg.User, Password: c.cfg.Password},
		DialTimeout: 5 * time.Second, ReadTimeout: 30 * time.Second,
	})
	if err != nil {
		return err
	}
	defer conn.Close()
	for {
		var n uint64
		err := conn.QueryRow(ctx, "SELECT count() FROM system.zookeeper WHERE path = '/'").Scan(&n)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %w)", ctx.Err(), err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// serverConfig returns the configuration of shard s's replica r (from 0).
func (c *Cluster) serverConfig(s, r, tcp, http, interserver int) chserver.Config {
	cfg := c.cfg
	return chserver.Config{
		Binary:            cfg.Binary,
		DataDir:           filepath.Join(cfg.Dir, fmt.Sprintf("s%dr%d", s+1, r+1)),
		ListenHost:        cfg.Host,
		TCPPort:           tcp,
		HTTPPort:          http,
		User:              cfg.User,
		Password:          cfg.Password,
		ReadOnlyUser:      cfg.ReadOnlyUser,
		ReadOnlyPassword:  cfg.ReadOnlyPassword,
		ReadOnlyDatabases: cfg.ReadOnlyDatabases,
		Logger:            cfg.Logger.With(zap.String("node", fmt.Sprintf("s%dr%d", s+1, r+1))),
		Cluster: &chserver.ClusterConfig{
			Name:                cfg.Name,
			Shards:              c.addrs,
			Shard:               fmt.Sprintf("%02d", s+1),
			Replica:             fmt.Sprintf("r%d", r+1),
			ZooKeeper:           []string{c.zk.Addr()},
			InterserverPort:     interserver,
			InterserverPassword: cfg.InterserverPassword,
		},
	}
}

// Name returns the cluster's name, for SchemaOptions.Cluster.
func (c *Cluster) Name() string { return c.cfg.Name }

// Shards returns the number of shards.
func (c *Cluster) Shards() int { return c.cfg.Shards }

// Replicas returns the number of replicas per shard.
func (c *Cluster) Replicas() int { return c.cfg.Replicas }

// User returns the administrative user.
func (c *Cluster) User() string { return c.cfg.User }

// Password returns the administrative user's password. Do not log it.
func (c *Cluster) Password() string { return c.cfg.Password }

// Server returns shard's replica (both from 0).
func (c *Cluster) Server(shard, replica int) *chserver.Server { return c.servers[shard][replica] }

// Addr returns the native address of shard's replica (both from 0).
func (c *Cluster) Addr(shard, replica int) string { return c.addrs[shard][replica] }

// Addrs returns every server's native address, shard by shard.
func (c *Cluster) Addrs() []string {
	var out []string
	for _, shard := range c.addrs {
		out = append(out, shard...)
	}
	return out
}

// ZooKeeper returns the cluster's ZooKeeper server.
func (c *Cluster) ZooKeeper() *ZooKeeper { return c.zk }

// Stop stops every server, then ZooKeeper, and returns once all have
// exited. It removes nothing from Dir. Later calls return the first
// call's result.
func (c *Cluster) Stop(ctx context.Context) error {
	c.stopOnce.Do(func() {
		var (
			wg   sync.WaitGroup
			mu   sync.Mutex
			errs []error
		)
		for _, shard := range c.servers {
			for _, srv := range shard {
				if srv == nil {
					continue
				}
				wg.Go(func() {
					if err := srv.Stop(ctx); err != nil {
						mu.Lock()
						errs = append(errs, err)
						mu.Unlock()
					}
				})
			}
		}
		wg.Wait()
		if c.zk != nil {
			errs = append(errs, c.zk.Stop(ctx))
		}
		if err := errors.Join(errs...); err != nil {
			c.stopErr = fmt.Errorf("chcluster: stop: %w", err)
		}
	})
	return c.stopErr
}
