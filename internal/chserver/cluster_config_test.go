package chserver

import (
	"encoding/xml"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// goodCluster returns a valid cluster configuration of node s1r1.
func goodCluster() *ClusterConfig {
	return &ClusterConfig{
		Name:                "events",
		Shards:              [][]string{{"127.0.0.1:9001", "127.0.0.1:9002"}, {"127.0.0.1:9003", "127.0.0.1:9004"}},
		Shard:               "01",
		Replica:             "r1",
		ZooKeeper:           []string{"127.0.0.1:2181"},
		InterserverPassword: "inter<server>",
	}
}

func TestValidateCluster(t *testing.T) {
	for _, tc := range []struct {
		name    string
		mutate  func(c *Config)
		wantErr string
	}{
		{"good", func(*Config) {}, ""},
		{"no password", func(c *Config) { c.Password = "" }, "Password is required with Cluster"},
		{"bad name", func(c *Config) { c.Cluster.Name = "a-b" }, "Cluster.Name"},
		{"no shards", func(c *Config) { c.Cluster.Shards = nil }, "Cluster.Shards is empty"},
		{"empty shard", func(c *Config) { c.Cluster.Shards = [][]string{{}} }, "has no replica"},
		{"bad address", func(c *Config) { c.Cluster.Shards[0][1] = "127.0.0.1" }, "Cluster.Shards[0]"},
		{"bad macro", func(c *Config) { c.Cluster.Replica = "r 1" }, "Cluster.Replica"},
		{"no zookeeper", func(c *Config) { c.Cluster.ZooKeeper = nil }, "Cluster.ZooKeeper is empty"},
		{"bad zookeeper", func(c *Config) { c.Cluster.ZooKeeper = []string{"zk"} }, "Cluster.ZooKeeper"},
		{"no interserver password", func(c *Config) { c.Cluster.InterserverPassword = "" }, "InterserverPassword is required"},
		{"interserver port taken", func(c *Config) { c.TCPPort, c.Cluster.InterserverPort = 9001, 9001 }, "InterserverPort"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Config{DataDir: "/d", Password: "p", Cluster: goodCluster()}
			tc.mutate(&c)
			err := c.Validate()
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("Validate = %v, want nil", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("Validate = %v, want an error mentioning %q", err, tc.wantErr)
			}
		})
	}
}

// clusterXML is what a test reads back from config.xml.
type clusterXML struct {
	InterserverHost string `xml:"interserver_http_host"`
	InterserverPort int    `xml:"interserver_http_port"`
	InterserverUser string `xml:"interserver_http_credentials>user"`
	InterserverPass string `xml:"interserver_http_credentials>password"`
	RemoteServers   struct {
		Clusters []struct {
			XMLName xml.Name
			Shards  []struct {
				InternalReplication bool `xml:"internal_replication"`
				Replicas            []struct {
					Host     string `xml:"host"`
					Port     int    `xml:"port"`
					User     string `xml:"user"`
					Password string `xml:"password"`
				} `xml:"replica"`
			} `xml:"shard"`
		} `xml:",any"`
	} `xml:"remote_servers"`
	ZooKeeper []struct {
		Host string `xml:"host"`
		Port int    `xml:"port"`
	} `xml:"zookeeper>node"`
	MarkCache int64 `xml:"mark_cache_size"`
}

// TestClusterConfigFile writes a cluster node's config.xml and reads back
// what a cluster needs: every replica with the administrative user's
// credentials and internal_replication, ZooKeeper, the node's macros, the
// interserver port with credentials; and none of it for a standalone
// server.
func TestClusterConfigFile(t *testing.T) {
	dir := t.TempDir()
	l, err := newLayout(dir)
	if err != nil {
		t.Fatal(err)
	}
	c := Config{DataDir: dir, TCPPort: 9001, HTTPPort: 8123, Password: "s3cret&", Cluster: goodCluster()}
	c.Cluster.InterserverPort = 9009
	c.setDefaults()
	if err := writeConfig(l, c, false); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "config.xml"))
	if err != nil {
		t.Fatal(err)
	}
	var got clusterXML
	if err := xml.Unmarshal(raw, &got); err != nil {
		t.Fatalf("config.xml: %v\n%s", err, raw)
	}
	if got.InterserverHost != "127.0.0.1" || got.InterserverPort != 9009 || got.InterserverUser != "interserver" || got.InterserverPass != "inter<server>" {
		t.Errorf("interserver: %+v", got)
	}
	if len(got.RemoteServers.Clusters) != 1 || got.RemoteServers.Clusters[0].XMLName.Local != "events" || len(got.RemoteServers.Clusters[0].Shards) != 2 {
		t.Fatalf("remote_servers: %+v", got.RemoteServers.Clusters)
	}
	for _, s := range got.RemoteServers.Clusters[0].Shards {
		if !s.InternalReplication || len(s.Replicas) != 2 {
			t.Errorf("shard %+v: want internal_replication and 2 replicas", s)
		}
		for _, r := range s.Replicas {
			if r.Host != "127.0.0.1" || r.User != "collector" || r.Password != "s3cret&" {
				t.Errorf("replica %+v: want the administrative user's credentials", r)
			}
		}
	}
	if len(got.ZooKeeper) != 1 || got.ZooKeeper[0].Port != 2181 {
		t.Errorf("zookeeper: %+v", got.ZooKeeper)
	}
	if !strings.Contains(string(raw), "<shard>01</shard>") || !strings.Contains(string(raw), "<replica>r1</replica>") || !strings.Contains(string(raw), "<cluster>events</cluster>") {
		t.Errorf("macros missing:\n%s", raw)
	}
	if got.MarkCache != 64<<20 {
		t.Errorf("mark cache %d, want 64 MiB in cluster mode", got.MarkCache)
	}
	users, err := os.ReadFile(filepath.Join(dir, "users.xml"))
	if err != nil || !strings.Contains(string(users), "<background_pool_size>4</background_pool_size>") || strings.Contains(string(users), "s3cret") {
		t.Errorf("users.xml: want 4 background threads and no clear password (%v):\n%s", err, users)
	}

	// A standalone server has none of it.
	c.Cluster = nil
	if err := writeConfig(l, c, false); err != nil {
		t.Fatal(err)
	}
	raw, _ = os.ReadFile(filepath.Join(dir, "config.xml"))
	for _, word := range []string{"remote_servers", "zookeeper", "macros", "interserver", "s3cret", "background_pool_size"} {
		if strings.Contains(string(raw), word) {
			t.Errorf("standalone config.xml has %s", word)
		}
	}
}
