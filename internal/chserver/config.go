package chserver

import (
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
)

// Config describes a managed ClickHouse server. DataDir is the only
// required field; Start fills in the defaults documented on each field.
type Config struct {
	// Binary is the server executable, as a path or a name looked up on
	// PATH. "" auto-detects: "clickhouse-server" on PATH or in /usr/sbin,
	// else the single "clickhouse" binary of newer packages, which is run
	// as `clickhouse server`. See Available.
	Binary string
	// DataDir holds everything the server writes: the generated
	// config.xml and users.xml, the data, and the logs (DataDir/log). It
	// is created if missing; Stop removes nothing from it, so a server
	// started again on the same DataDir sees the same data.
	DataDir string
	// ListenHost is the one address the server listens on: a loopback
	// IP address such as "::1", or a wildcard ("0.0.0.0", "::") to expose
	// the ports, though users still only accept connections from loopback
	// addresses. Default "127.0.0.1".
	ListenHost string
	// TCPPort is the native-protocol port; 0 picks a free port.
	TCPPort int
	// HTTPPort is the HTTP interface port; 0 picks a free port.
	HTTPPort int
	// StartTimeout bounds how long Start waits for the server to answer;
	// default 30s.
	StartTimeout time.Duration
	// ReadOnlyUser, if not "", names an extra user, restricted to
	// loopback, whose profile has readonly=1: it can run SELECTs but not
	// INSERT, ALTER or CREATE. It must be a plain identifier other than
	// "default".
	ReadOnlyUser string
	// ReadOnlyPassword is ReadOnlyUser's password; it is stored in
	// users.xml only as its SHA-256.
	ReadOnlyPassword string
	// ReadOnlyDatabases, if not empty, are the only databases
	// ReadOnlyUser may read (users.xml allow_databases); others, such as
	// a private database of secrets, are refused to it.
	ReadOnlyDatabases []string
	// Logger receives the server's lifecycle events and its stderr lines
	// (at debug level); nil logs nothing.
	Logger *zap.Logger
}

// identRE matches the user names Config accepts: they become XML element
// names in users.xml and identifiers in SQL.
var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// setDefaults fills in every zero field that has a default. It is the one
// place defaults are applied.
func (c *Config) setDefaults() {
	if c.ListenHost == "" {
		c.ListenHost = DefaultListenHost
	}
	if c.StartTimeout == 0 {
		c.StartTimeout = DefaultStartTimeout
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
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
	if c.StartTimeout < 0 {
		errs = append(errs, fmt.Errorf("StartTimeout %v is negative", c.StartTimeout))
	}
	if c.ReadOnlyUser != "" {
		if !identRE.MatchString(c.ReadOnlyUser) {
			errs = append(errs, fmt.Errorf("ReadOnlyUser %q is not a plain identifier", c.ReadOnlyUser))
		} else if c.ReadOnlyUser == "default" {
			errs = append(errs, errors.New(`ReadOnlyUser must not be "default"`))
		}
	} else if c.ReadOnlyPassword != "" || len(c.ReadOnlyDatabases) > 0 {
		errs = append(errs, errors.New("ReadOnlyPassword or ReadOnlyDatabases is set but ReadOnlyUser is empty"))
	}
	for _, db := range c.ReadOnlyDatabases {
		if !identRE.MatchString(db) {
			errs = append(errs, fmt.Errorf("ReadOnlyDatabases: %q is not a plain identifier", db))
		}
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
	ReadOnlyUser         string
	ReadOnlyPasswordHash string
	ReadOnlyDatabases    []string
}

// The root element is <yandex>: ClickHouse 18.16 requires it and current
// releases still accept it (they also accept <clickhouse>, which 18.16
// does not). Only keys both understand are used. Directory paths end in a
// slash, which both require.
//
// The uncompressed cache is off: its size is 0 and the profiles set
// use_uncompressed_cache=0. The mark cache is 256 MiB instead of 5 GiB.
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
  <mark_cache_size>268435456</mark_cache_size>
  <uncompressed_cache_size>0</uncompressed_cache_size>
  <max_concurrent_queries>50</max_concurrent_queries>
  <max_connections>256</max_connections>
  <keep_alive_timeout>3</keep_alive_timeout>
</yandex>
`

const usersTemplate = `<?xml version="1.0"?>
<!-- Generated by chserver; rewritten on every start. -->
<yandex>
  <profiles>
    <default>
      <max_memory_usage>2000000000</max_memory_usage>
      <use_uncompressed_cache>0</use_uncompressed_cache>
    </default>
    <readonly>
      <readonly>1</readonly>
      <max_memory_usage>2000000000</max_memory_usage>
      <use_uncompressed_cache>0</use_uncompressed_cache>
    </readonly>
  </profiles>
  <users>
    <default>
      <password></password>
      <networks>
        <ip>127.0.0.1</ip>
        <ip>::1</ip>
      </networks>
      <profile>default</profile>
      <quota>default</quota>
    </default>
{{- if .ReadOnlyUser}}
    <{{.ReadOnlyUser}}>
      <password_sha256_hex>{{.ReadOnlyPasswordHash}}</password_sha256_hex>
      <networks>
        <ip>127.0.0.1</ip>
        <ip>::1</ip>
      </networks>
      <profile>readonly</profile>
      <quota>default</quota>
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
  </quotas>
</yandex>
`

// templates holds config.xml and users.xml; it is never modified.
var templates = template.Must(template.Must(template.New("config.xml").
	Funcs(template.FuncMap{"x": xmlEscape}).
	Parse(configTemplate)).
	New("users.xml").Parse(usersTemplate))

// xmlEscape escapes s for use as XML character data.
func xmlEscape(s string) (string, error) {
	var b strings.Builder
	if err := xml.EscapeText(&b, []byte(s)); err != nil {
		return "", fmt.Errorf("escape %q: %w", s, err)
	}
	return b.String(), nil
}

// writeConfig creates the directories under l and writes config.xml and
// users.xml for c (with defaults applied and ports chosen).
func writeConfig(l layout, c Config) error {
	for _, d := range l.dirs() {
		if err := os.MkdirAll(d, 0o750); err != nil {
			return fmt.Errorf("create %s: %w", d, err)
		}
	}
	p := configParams{
		L:                 l,
		ListenHost:        c.ListenHost,
		TCPPort:           c.TCPPort,
		HTTPPort:          c.HTTPPort,
		ReadOnlyUser:      c.ReadOnlyUser,
		ReadOnlyDatabases: c.ReadOnlyDatabases,
	}
	if c.ReadOnlyUser != "" {
		sum := sha256.Sum256([]byte(c.ReadOnlyPassword))
		p.ReadOnlyPasswordHash = hex.EncodeToString(sum[:])
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
