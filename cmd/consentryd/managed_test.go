package main

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/consentry/consentry/collector"
)

func TestManagedClickHouseFlags(t *testing.T) {
	o := mustParseFlags(t, []string{"--analyst-networks", "10.0.0.0/8, ::1", "--clickhouse-listen-host", "0.0.0.0",
		"--clickhouse-max-failures", "3", "--clickhouse-failure-window", "1m"}, map[string]string{"CONSENTRY_COLLECTOR_PASSWORD_FILE": "/run/secrets/ch"})
	c := o.cfg
	if !slices.Equal(c.AnalystNetworks, []string{"10.0.0.0/8", "::1"}) || c.ClickHouseListenHost != "0.0.0.0" ||
		c.ClickHouseMaxFailures != 3 || c.ClickHouseFailureWindow != time.Minute || c.CollectorPasswordFile != "/run/secrets/ch" {
		t.Errorf("config = networks %q, listen %q, failures %d in %v, password file %q",
			c.AnalystNetworks, c.ClickHouseListenHost, c.ClickHouseMaxFailures, c.ClickHouseFailureWindow, c.CollectorPasswordFile)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
	o = mustParseFlags(t, []string{"--analyst-networks", "everywhere"}, nil)
	if err := o.cfg.Validate(); err == nil {
		t.Error("a bad analyst network passed Validate")
	}
}

func TestExitCode(t *testing.T) {
	if got := exitCode(fmt.Errorf("serve: %w", collector.ErrClickHouseFailed)); got != exitClickHouseFailed {
		t.Errorf("exit code for a failed ClickHouse = %d, want %d", got, exitClickHouseFailed)
	}
	if got := exitCode(errors.New("listen: address in use")); got != exitError {
		t.Errorf("exit code for another error = %d, want %d", got, exitError)
	}
}
