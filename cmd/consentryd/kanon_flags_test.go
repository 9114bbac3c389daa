package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/consentry/consentry/anonymizer/kanon"
)

func TestGeneralizeFlags(t *testing.T) {
	o := mustParseFlags(t, nil, nil)
	g := o.cfg.Anonymizer.Generalize
	if g.K != kanon.DefaultK || g.Delay != kanon.DefaultDelay || g.Hierarchy.String() != kanon.DefaultHierarchy || g.ReleaseInterval != kanon.DefaultReleaseInterval {
		t.Errorf("defaults: %+v", g)
	}
	o = mustParseFlags(t, []string{"--generalize-delay", "20m", "--generalize-hierarchy", "app,os", "--generalize-release-interval", "10s"}, nil)
	g = o.cfg.Anonymizer.Generalize
	if g.Delay != 20*time.Minute || g.Hierarchy.String() != "app,os" || g.ReleaseInterval != 10*time.Second {
		t.Errorf("set: %+v", g)
	}
	// The old name of the delay still works, from the environment too,
	// unless the new one is given.
	for _, tt := range []struct {
		args []string
		env  map[string]string
		want time.Duration
	}{
		{[]string{"--generalize-window", "2h"}, nil, 2 * time.Hour},
		{nil, map[string]string{"CONSENTRY_GENERALIZE_WINDOW": "3h"}, 3 * time.Hour},
		{[]string{"--generalize-window", "2h", "--generalize-delay", "5m"}, nil, 5 * time.Minute},
	} {
		o := mustParseFlags(t, tt.args, tt.env)
		if d := o.cfg.Anonymizer.Generalize.Delay; d != tt.want {
			t.Errorf("%v %v: delay %v, want %v", tt.args, tt.env, d, tt.want)
		}
	}
	if _, err := parseFlags([]string{"--generalize-hierarchy", "model,model"}, &bytes.Buffer{}, env(nil)); err == nil || !strings.Contains(err.Error(), "--generalize-hierarchy") {
		t.Errorf("a bad hierarchy: %v", err)
	}
}
