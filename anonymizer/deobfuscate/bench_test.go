package deobfuscate

import (
	"bytes"
	"fmt"
	"runtime"
	"testing"
)

// synthMapping writes an R8 mapping of classes classes of methods methods
// each, every method with two line ranges and an inlined frame, like a
// large app's.
func synthMapping(classes, methods int) []byte {
	var b bytes.Buffer
	b.WriteString("# compiler: R8\n# pg_map_id: 0123abc\n# {\"id\":\"com.android.tools.r8.mapping\",\"version\":\"2.2\"}\n")
	for c := range classes {
		fmt.Fprintf(&b, "com.example.app.feature%d.SomeLongClassName%d -> a%d.b%d:\n", c%100, c, c/100, c)
		fmt.Fprintf(&b, "# {\"id\":\"sourceFile\",\"fileName\":\"SomeLongClassName%d.kt\"}\n", c)
		fmt.Fprintf(&b, "    com.example.app.data.Repository repository -> a\n")
		for m := range methods {
			fmt.Fprintf(&b, "    %d:%d:void doSomething%d(java.lang.String,int):%d:%d -> %c\n", m*10+1, m*10+4, m, 40+m*10, 43+m*10, 'a'+m%26)
			fmt.Fprintf(&b, "    %d:%d:void com.example.app.util.Checks.require(boolean):12:12 -> %c\n", m*10+5, m*10+5, 'a'+m%26)
			fmt.Fprintf(&b, "    %d:%d:void doSomething%d(java.lang.String,int):44 -> %c\n", m*10+5, m*10+5, m, 'a'+m%26)
		}
	}
	return b.Bytes()
}

// BenchmarkParse parses a mapping of 20,000 classes of 10 methods (about
// 25 MB, a large app's) and reports the Mapping's estimated and measured
// memory per file byte.
func BenchmarkParse(b *testing.B) {
	data := synthMapping(20000, 10)
	b.SetBytes(int64(len(data)))
	var m *Mapping
	var heap uint64
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		var err error
		if m, err = Parse(bytes.NewReader(data)); err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		heap = after.HeapAlloc - before.HeapAlloc
	}
	b.ReportMetric(float64(m.Size())/float64(len(data)), "size/filebyte")
	b.ReportMetric(float64(heap)/float64(len(data)), "heap/filebyte")
	b.ReportMetric(float64(len(data))/1e6, "fileMB")
	runtime.KeepAlive(m)
}
