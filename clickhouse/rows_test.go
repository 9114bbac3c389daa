package clickhouse

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/consentry/consentry/pipeline"
)

// rowGen makes realistic rows for tests and benchmarks: a mix of every
// table, with unique event ids.
type rowGen struct {
	rnd  *rand.Rand
	next uint64 // the next event id's counter
	day  time.Time
}

func newRowGen(seed uint64, day time.Time) *rowGen {
	return &rowGen{rnd: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), next: seed << 32, day: day.UTC().Truncate(24 * time.Hour)}
}

func (g *rowGen) pick(vals ...string) string { return vals[g.rnd.IntN(len(vals))] }

func (g *rowGen) common() pipeline.Common {
	g.next++
	var id [16]byte
	binary.BigEndian.PutUint64(id[:8], g.next)
	binary.BigEndian.PutUint64(id[8:], g.rnd.Uint64())
	id[6] = id[6]&0x0f | 0x40 // a version 4 UUID, as SDKs send
	id[8] = id[8]&0x3f | 0x80
	os := g.pick("android", "ios")
	return pipeline.Common{
		AppID:      g.pick("com.example.notes", "com.example.maps", "org.example.chat"),
		EventID:    id,
		EventTime:  g.day.Add(time.Duration(g.rnd.IntN(86400)) * time.Second),
		SessionKey: g.rnd.Uint64N(5000) + 1,
		QI: pipeline.QI{
			AppVersion:  g.pick("4.12.0", "4.12.1", "4.13.0"),
			AppBuild:    g.pick("4120003", "4120104", "4130001"),
			SDKVersion:  "consentry-kotlin/0.3.1",
			DeviceClass: g.pick("phone", "phone", "phone", "tablet"),
			DeviceModel: g.pick("Pixel 8", "Galaxy S23", "iPhone15,2", "iPhone14,5", "other"),
			OSName:      os,
			OSVersion:   g.pick("14", "15", "17.4.1", "18.0"),
			Locale:      g.pick("de-AT", "en-US", "fr-FR", "ja-JP"),
			Country:     g.pick("AT", "US", "FR", "JP", ""),
			Region:      g.pick("AT-9", "US-CA", "FR-IDF", ""),
		},
	}
}

// rows returns n rows: 30% sessions, 40% gestures, 5% crashes, 15% custom
// events, 10% diagnostics.
func (g *rowGen) rows(n int) *pipeline.Rows {
	r := new(pipeline.Rows)
	for range n {
		switch p := g.rnd.IntN(100); {
		case p < 30:
			row := pipeline.SessionRow{Common: g.common(), Phase: "start"}
			if g.rnd.IntN(2) == 0 {
				row.Phase, row.DurationMs = "end", g.rnd.Uint64N(3_600_000)
				row.ForegroundMs = row.DurationMs / 2
			}
			r.Sessions = append(r.Sessions, row)
		case p < 70:
			r.Gestures = append(r.Gestures, pipeline.GestureRow{
				Common: g.common(), Type: g.pick("tap", "swipe", "scroll", "long_press"),
				Screen: g.pick("home", "settings.privacy", "editor", "search"),
				Count:  uint32(g.rnd.IntN(20) + 1), DurationMs: uint32(g.rnd.IntN(2000)),
			})
		case p < 75:
			frames := make([]pipeline.Frame, 8+g.rnd.IntN(8))
			for i := range frames {
				frames[i] = pipeline.Frame{
					Module:   g.pick("com.example.notes", "libsystem_kernel.dylib", "java.base"),
					Function: fmt.Sprintf("Editor.save%d", g.rnd.IntN(50)),
					File:     g.pick("Editor.kt", "Store.kt", "", "Thread.java"),
					Line:     uint32(g.rnd.IntN(900)),
					InApp:    i%2 == 0,
				}
			}
			r.Crashes = append(r.Crashes, pipeline.CrashRow{
				Common: g.common(), ExceptionType: g.pick("java.lang.IllegalStateException", "SIGSEGV"),
				Message: "note [uuid] could not be saved for [email]", Frames: frames,
				Thread: "main", Handled: g.rnd.IntN(3) == 0, AppState: g.pick("foreground", "background"),
			})
		case p < 90:
			r.Customs = append(r.Customs, pipeline.CustomRow{
				Common: g.common(), Name: g.pick("export_pdf", "share", "search"),
				StringKeys: []string{"format", "source"}, StringValues: []string{"a4", g.pick("menu", "shortcut")},
				NumberKeys: []string{"pages"}, NumberValues: []float64{float64(g.rnd.IntN(100))},
				BoolKeys: []string{"premium"}, BoolValues: []bool{g.rnd.IntN(2) == 0},
			})
		default:
			r.Diagnostics = append(r.Diagnostics, pipeline.DiagnosticRow{
				Common: g.common(), Kind: g.pick("app_start", "hang", "memory_warning"),
				DurationMs: uint32(g.rnd.IntN(5000)), StartType: g.pick("cold", "warm", "unknown"),
				NetworkType: g.pick("wifi", "cellular"), MemoryBytes: g.rnd.Uint64N(1 << 31),
			})
		}
	}
	return r
}

// retryRows returns n crashes and n session events of day, each with an
// event id of its own, spread over three crash groups, two app versions
// and two OS families, so the aggregates have several rows per group and
// day. Some crashes are handled, some have no session.
func retryRows(day time.Time, n int) *pipeline.Rows {
	rows := &pipeline.Rows{}
	common := func(kind byte, i int, session uint64) pipeline.Common {
		var id [16]byte
		id[0] = kind
		binary.BigEndian.PutUint64(id[8:], uint64(i))
		id[6], id[8] = 0x40|id[6]&0x0f, 0x80|id[8]&0x3f // a version 4 UUID
		return pipeline.Common{
			AppID: "com.example.notes", EventTime: day.Add(time.Duration(i) * time.Minute), EventID: id, SessionKey: session,
			QI: pipeline.QI{AppVersion: []string{"4.12.0", "4.13.0"}[i%2], OSName: []string{"android", "ios"}[i/2%2], OSVersion: "14",
				Country: "AT", Region: "AT-9", DeviceModel: "Pixel 8"},
		}
	}
	for i := range n {
		fp := uint64(100 + i%3)
		rows.Crashes = append(rows.Crashes, pipeline.CrashRow{
			Common:        common('c', i, uint64(i%5)),
			ExceptionType: fmt.Sprintf("E%d", fp), Fingerprint: fp, Message: "boom",
			Frames:  []pipeline.Frame{{Module: "app", Function: "f", InApp: true}},
			Handled: i%4 == 0, Thread: "main", AppState: "foreground",
		})
		phase := []string{"start", "end"}[i%2]
		var dur uint64
		if phase == "end" {
			dur = uint64(1000 * (i + 1))
		}
		rows.Sessions = append(rows.Sessions, pipeline.SessionRow{
			Common: common('s', i, uint64(i/2+1)), Phase: phase, DurationMs: dur, ForegroundMs: dur / 2,
		})
	}
	return rows
}
