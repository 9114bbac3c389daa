// Package cli holds what Consentry's commands share: flags that fall back
// to CONSENTRY_* environment variables, secrets read from the environment
// or files, and the zap logger the flags describe.
package cli

import (
	"flag"
	"fmt"
	"os"
	"strings"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// EnvPrefix prefixes every environment variable the commands read.
const EnvPrefix = "CONSENTRY_"

// EnvName returns the environment variable for a flag: "grpc-addr" →
// "CONSENTRY_GRPC_ADDR".
func EnvName(flagName string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// ApplyEnv sets every flag of fs that was not given on the command line
// from its environment variable, if set, and appends the variable's name to
// each flag's usage so --help shows it. Call it after fs.Parse.
func ApplyEnv(fs *flag.FlagSet, lookup func(string) (string, bool)) error {
	given := make(map[string]bool)
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if err != nil || given[f.Name] {
			return
		}
		if v, ok := lookup(EnvName(f.Name)); ok {
			if serr := fs.Set(f.Name, v); serr != nil {
				err = fmt.Errorf("%s: %w", EnvName(f.Name), serr)
			}
		}
	})
	return err
}

// DocumentEnv appends "(env CONSENTRY_X)" to every flag's usage. Call it
// after defining the flags and before parsing.
func DocumentEnv(fs *flag.FlagSet) {
	fs.VisitAll(func(f *flag.Flag) { f.Usage += " (env " + EnvName(f.Name) + ")" })
}

// Parse documents the environment variables in fs's usage (DocumentEnv),
// parses args, refuses arguments left over after the flags, and then sets
// the flags not given from the environment (ApplyEnv): what every command
// does with its flags.
func Parse(fs *flag.FlagSet, args []string, lookup func(string) (string, bool)) error {
	DocumentEnv(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	return ApplyEnv(fs, lookup)
}

// Secret returns the secret named by envVar if set, else the contents of
// file (trailing newline trimmed) if file is not empty, else "". Secrets are
// never taken from command-line flags, which other users can read.
func Secret(envVar, file string) (string, error) {
	if v, ok := os.LookupEnv(envVar); ok {
		return v, nil
	}
	if file == "" {
		return "", nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("read secret file: %w", err)
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}

// NewLogger returns a zap logger at level ("debug", "info", "warn",
// "error") in format ("json" or "console"), writing to stderr.
func NewLogger(level, format string) (*zap.Logger, error) {
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return nil, fmt.Errorf("log level: %w", err)
	}
	var cfg zap.Config
	switch format {
	case "json":
		cfg = zap.NewProductionConfig()
	case "console":
		cfg = zap.NewDevelopmentConfig()
		cfg.Development = false
	default:
		return nil, fmt.Errorf("log format %q: want json or console", format)
	}
	cfg.Level = zap.NewAtomicLevelAt(lvl)
	cfg.DisableStacktrace = true
	l, err := cfg.Build()
	if err != nil {
		return nil, fmt.Errorf("build logger: %w", err)
	}
	return l, nil
}
