package main

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"text/tabwriter"

	"github.com/consentry/consentry/anonymizer/deobfuscate"
	"github.com/consentry/consentry/internal/cli"
)

// mappingsUsage describes the mappings subcommands.
const mappingsUsage = `Usage: consentry mappings <upload|list> [flags]

Manages the R8/ProGuard mapping files of Android app builds. The
collector deobfuscates the crashes of a build with its mapping before it
groups them, so stacks show the original classes, methods, files and
lines, and a group stays one group across releases whose obfuscation
differs. Nothing leaves your ClickHouse. Upload the mapping (R8 writes it
to build/outputs/mapping/<variant>/mapping.txt) before the build ships:
crashes stored before the collector loaded it (within a minute of the
upload) stay obfuscated.

  upload  store --file as the mapping of --app-id --app-version (and
          --app-build, or every build of the version); it is checked
          first, and replaces an earlier upload for the same build.
          Run it with the ClickHouse credentials an operator uses for
          consentry apps: a mapping changes how every crash of the app
          is grouped, so an app's key cannot upload one
  list    list the stored mappings
`

func runMappings(ctx context.Context, args []string, stdout, stderr io.Writer, lookup func(string) (string, bool)) error {
	sub, fs, args, err := subcommand("mappings", args, mappingsUsage, stderr)
	if err != nil {
		return err
	}
	var ch chFlags
	ch.register(fs)
	appID := fs.String("app-id", "", "the app's `id`, e.g. com.example.notes")
	version := fs.String("app-version", "", "the app `version` the mapping belongs to, as the SDK reports it, e.g. 4.12.0")
	build := fs.String("app-build", "", "the `build` number, e.g. 4120003 (default: every build of --app-version)")
	file := fs.String("file", "", "the mapping `file` R8 or ProGuard wrote (upload)")
	if err := cli.Parse(fs, args, lookup); err != nil {
		return err
	}
	var (
		data []byte
		m    *deobfuscate.Mapping
	)
	switch sub {
	case "upload":
		if *appID == "" || *version == "" || *file == "" {
			return errors.New("mappings upload: give --app-id, --app-version and --file")
		}
		if data, m, err = readMapping(*file); err != nil {
			return err
		}
	case "list":
	default:
		fmt.Fprint(stderr, mappingsUsage)
		return fmt.Errorf("mappings: unknown subcommand %q", sub)
	}
	c, _, err := ch.open(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	if sub == "list" {
		list, err := c.ListMappings(ctx)
		if err != nil {
			return err
		}
		w := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(w, "APP\tVERSION\tBUILD\tBYTES\tUPLOADED")
		for _, s := range list {
			fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%s\n", s.AppID, s.AppVersion, cmp.Or(s.AppBuild, "*"), s.Bytes, s.UploadedAt.UTC().Format("2006-01-02 15:04:05"))
		}
		return w.Flush()
	}
	k := deobfuscate.Key{AppID: *appID, AppVersion: *version, AppBuild: *build}
	if err := c.UploadMapping(ctx, k, m.ID(), data); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "uploaded the mapping of %s %s (build %s): %d classes, %d methods, %d bytes\n",
		k.AppID, k.AppVersion, cmp.Or(k.AppBuild, "every build"), m.Classes(), m.Methods(), len(data))
	return nil
}

// readMapping reads and parses the mapping file at path.
func readMapping(path string) ([]byte, *deobfuscate.Mapping, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, nil, fmt.Errorf("mappings upload: %w", err)
	}
	if fi.Size() > deobfuscate.MaxFileBytes {
		return nil, nil, fmt.Errorf("mappings upload: %s has %d bytes, more than %d", path, fi.Size(), deobfuscate.MaxFileBytes)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("mappings upload: %w", err)
	}
	m, err := deobfuscate.Parse(bytes.NewReader(data))
	if err != nil {
		return nil, nil, fmt.Errorf("mappings upload: %s: %w", path, err)
	}
	return data, m, nil
}
