package main

import (
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"

	"github.com/consentry/consentry/internal/cli"
)

// lookupIn returns a lookup over environ, "KEY=value" entries as
// os.Environ returns them; a later entry wins, as in os.Getenv.
func lookupIn(environ []string) func(string) (string, bool) {
	return func(key string) (string, bool) {
		for _, kv := range slices.Backward(environ) {
			if k, v, ok := strings.Cut(kv, "="); ok && k == key {
				return v, true
			}
		}
		return "", false
	}
}

// unknownVariables returns the names of the CONSENTRY_* variables in
// environ that set no flag and hold no secret: typos, or variables of a
// newer or older consentryd, that would otherwise be ignored in silence.
// The variables Kubernetes sets for a Service whose name starts with
// "consentry-" are not counted.
func (o *options) unknownVariables(environ []string) []string {
	var unknown []string
	for _, kv := range environ {
		k, v, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, cli.EnvPrefix) && !o.variables[k] && !serviceLink(k, v) && !toolVariable(k) && !slices.Contains(unknown, k) {
			unknown = append(unknown, k)
		}
	}
	slices.Sort(unknown)
	return unknown
}

// toolVariable reports whether name is a variable of Consentry's own
// scripts and tests (make run, make cluster, the chDB tests, the abuse
// suite), which reach consentryd through their environment.
func toolVariable(name string) bool {
	switch name {
	case "CONSENTRY_CHDB_LIB", "CONSENTRY_DEMO_EXIT", "CONSENTRY_FLEET_DEVICES",
		"CONSENTRY_ABUSE_ATTACK", "CONSENTRY_ABUSE_GRPC", "CONSENTRY_ABUSE_HTTP", "CONSENTRY_SLOWBODY_TARGET":
		return true
	}
	// make cluster's, and the tests' own switches and helpers'.
	for _, prefix := range []string{"CONSENTRY_CLUSTER_", "CONSENTRY_TEST_", "CONSENTRY_SDK_"} {
		if strings.HasPrefix(name, prefix) {
			return true
		}
	}
	return false
}

// serviceLinkPort matches the names of the variables Kubernetes sets for
// each port of a Service: FOO_PORT_4790_TCP, its _PROTO, _PORT and _ADDR.
var serviceLinkPort = regexp.MustCompile(`_PORT_[0-9]+_(TCP|UDP|SCTP)(_PROTO|_PORT|_ADDR)?$`)

// serviceLink reports whether the variable name=value is one Kubernetes
// sets for a Service in the pod's namespace (enableServiceLinks).
func serviceLink(name, value string) bool {
	switch {
	case strings.HasSuffix(name, "_SERVICE_HOST"), strings.Contains(name, "_SERVICE_PORT"), serviceLinkPort.MatchString(name):
		return true
	case strings.HasSuffix(name, "_PORT"):
		return strings.HasPrefix(value, "tcp://") || strings.HasPrefix(value, "udp://") || strings.HasPrefix(value, "sctp://")
	}
	return false
}

// checkConfig is --check-config: it checks what run would use, without
// starting anything, writes each problem to w, or "configuration OK", and
// returns an error if there was any problem.
func checkConfig(o *options, unknown []string, w io.Writer) error {
	var errs []error
	for _, name := range unknown {
		errs = append(errs, fmt.Errorf("environment variable %s names no flag of consentryd (see --help)", name))
	}
	var err error
	if o.cfg.ClickHouse.Password, err = o.clickHousePassword(); err != nil {
		errs = append(errs, err)
	}
	if err := o.cfg.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := o.cfg.CheckFiles(); err != nil {
		errs = append(errs, err)
	}
	if len(errs) == 0 {
		fmt.Fprintln(w, "consentryd: configuration OK")
		return nil
	}
	for _, err := range errs {
		fmt.Fprintln(w, "consentryd: check-config:", err)
	}
	return errors.New("the configuration has problems (above)")
}
