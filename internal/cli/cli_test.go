package cli

import (
	"flag"
	"io"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	env := map[string]string{"CONSENTRY_ADDR": "from-env:1", "CONSENTRY_N": "7"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	for _, tc := range []struct {
		name    string
		args    []string
		env     map[string]string
		addr    string
		n       int
		wantErr string
	}{
		{name: "environment fills what is not given", args: nil, addr: "from-env:1", n: 7},
		{name: "a flag given wins over the environment", args: []string{"--addr", "flag:2"}, addr: "flag:2", n: 7},
		{name: "arguments left over", args: []string{"--n", "3", "extra"}, wantErr: `unexpected arguments: ["extra"]`},
		{name: "unknown flag", args: []string{"--nope"}, wantErr: "flag provided but not defined"},
		{name: "bad value in the environment", env: map[string]string{"CONSENTRY_N": "seven"}, wantErr: "CONSENTRY_N: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := flag.NewFlagSet("test", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			addr := fs.String("addr", "default:0", "listen `address`")
			n := fs.Int("n", 1, "a count")
			look := lookup
			if tc.env != nil {
				look = func(k string) (string, bool) { v, ok := tc.env[k]; return v, ok }
			}
			err := Parse(fs, tc.args, look)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Parse = %v, want an error containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if *addr != tc.addr || *n != tc.n {
				t.Errorf("addr, n = %q, %d; want %q, %d", *addr, *n, tc.addr, tc.n)
			}
			if u := fs.Lookup("addr").Usage; !strings.HasSuffix(u, "(env CONSENTRY_ADDR)") {
				t.Errorf("usage %q does not name its environment variable", u)
			}
		})
	}
}
