package deobfuscate

import (
	"strings"

	"github.com/consentry/consentry/pipeline"
)

// Frame is an original stack frame: what an obfuscated frame stands for.
type Frame struct {
	// Class is the original class, e.g.
	// com.example.notes.editor.NoteEditor.
	Class string
	// Method is the original method name, e.g. save.
	Method string
	// File is the source file: the one the mapping names for the class,
	// else the outer class's simple name with the extension of the
	// enclosing class's file (".java" if unknown), as retrace does.
	File string
	// Line is the original line, 0 if unknown.
	Line uint32
}

// Class returns the original name of the obfuscated class name, and
// whether the mapping knows it.
func (m *Mapping) Class(name string) (string, bool) {
	c, ok := m.classes[name]
	if !ok {
		return "", false
	}
	return c.original, true
}

// Lookup returns the original frames, innermost first, that the frame at
// line (0 if unknown) of the obfuscated class cls's method stands for:
// several when methods were inlined into it. thrown is the original name
// of the exception the stack belongs to, and innermost tells that the
// frame is the stack's innermost, where the mapping's rewriteFrame rules
// apply. ok is false if the mapping does not know cls.
//
// When the method is not in the mapping, or line is outside every range
// the method has, the class alone is restored, as retrace does. When
// several methods fit (overloads that share an obfuscated name, a frame
// without a line), the first in the file is taken, so a frame always
// retraces to one place.
func (m *Mapping) Lookup(cls, method string, line uint32, thrown string, innermost bool) ([]Frame, bool) {
	c, ok := m.classes[cls]
	if !ok {
		return nil, false
	}
	ch := c.pick(method, line)
	if ch == nil {
		return []Frame{{Class: c.original, Method: method, File: m.file(c.original, c), Line: line}}, true
	}
	frames := make([]Frame, 0, len(ch.frames))
	synthesized := 0
	for _, f := range ch.frames {
		if f.synthesized {
			synthesized++
		}
	}
	for _, f := range ch.frames {
		// Methods the compiler made do not belong in a stack, unless
		// they are all it has.
		if f.synthesized && synthesized < len(ch.frames) {
			continue
		}
		name := f.class
		if name == "" {
			name = c.original
		}
		frames = append(frames, Frame{Class: name, Method: f.name, File: m.file(name, c), Line: f.line(line)})
	}
	if innermost && thrown != "" {
		desc := "L" + strings.ReplaceAll(thrown, ".", "/") + ";"
		for _, r := range ch.rewrites {
			if r.throws == desc && r.removeInner < len(frames) {
				frames = frames[r.removeInner:]
			}
		}
	}
	return frames, true
}

// pick returns the chain of method that covers line, nil if none does.
func (c *class) pick(method string, line uint32) *chain {
	chains := c.methods[method]
	if len(chains) == 0 {
		return nil
	}
	var unranged, zero *chain
	for i := range chains {
		ch := &chains[i]
		switch {
		case !ch.ranged:
			if unranged == nil {
				unranged = ch
			}
		case line > 0 && ch.start <= line && line <= ch.end:
			return ch
		case ch.start == 0 && ch.end == 0 && zero == nil:
			zero = ch
		}
	}
	if line == 0 {
		switch {
		case zero != nil:
			return zero
		case unranged != nil:
			return unranged
		}
		return &chains[0]
	}
	return unranged
}

// line returns the original line of the obfuscated line l (0 if unknown)
// in the range of f.
func (f *member) line(l uint32) uint32 {
	switch {
	case f.orig == 0:
		// ProGuard leaves the original range out when it is the
		// obfuscated one.
		return l
	case f.orig == 1 || f.origEnd == f.origStart:
		return f.origStart
	case f.origEnd < f.origStart:
		// An inverted original range says nothing reliable.
		return l
	case !f.ranged:
		if l >= f.origStart && l <= f.origEnd {
			return l
		}
		return f.origStart
	case l < f.minStart:
		return f.origStart
	}
	return min(f.origStart+(l-f.minStart), f.origEnd)
}

// file returns the source file of the original class name, found in the
// mapping of enclosing.
func (m *Mapping) file(name string, enclosing *class) string {
	if f, ok := m.files[name]; ok {
		return f
	}
	// An inner class is in its outer class's file.
	if i := strings.IndexByte(name, '$'); i > 0 {
		if f, ok := m.files[name[:i]]; ok {
			return f
		}
	}
	outer := name[strings.LastIndexByte(name, '.')+1:]
	if i := strings.IndexByte(outer, '$'); i > 0 {
		outer = outer[:i]
	}
	ext := ".java"
	if f := enclosing.file; f != "" {
		if i := strings.LastIndexByte(f, '.'); i > 0 {
			ext = f[i:]
		}
	}
	return outer + ext
}

// Crash rewrites c's exception type and frames with their original names,
// as far as the mapping knows them, and reports whether anything changed.
// A frame is read the way the SDK writes a JVM frame: Module is the
// package and Function the class's simple name and the method
// ("NoteEditor.save"); a Module holding the whole class and a Function
// holding the method alone reads the same. Retraced frames are written
// the same way; they are in-app if their class is in the package named by
// appID (a reverse-DNS app id such as com.example.notes), or if the
// obfuscated frame was in-app and they are of its own class (not a
// library method inlined into it). c.Frames is replaced, never changed in
// place.
func (m *Mapping) Crash(c *pipeline.CrashRow, appID string) bool {
	changed := false
	thrown := strings.TrimSpace(c.ExceptionType)
	if orig, ok := m.Class(thrown); ok {
		thrown = orig
		if orig != c.ExceptionType {
			c.ExceptionType, changed = orig, true
		}
	}
	var out []pipeline.Frame
	for i, f := range c.Frames {
		cls, method, ok := splitFrame(f)
		var frames []Frame
		if ok {
			frames, ok = m.Lookup(cls, method, f.Line, thrown, i == 0)
		}
		if !ok {
			if out != nil {
				out = append(out, f)
			}
			continue
		}
		if out == nil {
			out = make([]pipeline.Frame, i, len(c.Frames)+len(frames)+4)
			copy(out, c.Frames[:i])
		}
		own, _ := m.Class(cls)
		for _, o := range frames {
			pkg, short := splitClass(o.Class)
			out = append(out, pipeline.Frame{
				Module:   pkg,
				Function: short + "." + o.Method,
				File:     o.File,
				Line:     o.Line,
				InApp:    inPackage(o.Class, appID) || f.InApp && o.Class == own,
			})
		}
	}
	if out != nil {
		c.Frames = out
		changed = true
	}
	return changed
}

// splitFrame returns the class and method of a JVM frame as the SDK
// writes it.
func splitFrame(f pipeline.Frame) (cls, method string, ok bool) {
	full := f.Function
	if f.Module != "" {
		full = f.Module + "." + f.Function
	}
	dot := strings.LastIndexByte(full, '.')
	if dot <= 0 || dot == len(full)-1 {
		return "", "", false
	}
	return full[:dot], full[dot+1:], true
}

// splitClass returns a class's package and simple name.
func splitClass(name string) (pkg, short string) {
	dot := strings.LastIndexByte(name, '.')
	if dot < 0 {
		return "", name
	}
	return name[:dot], name[dot+1:]
}

// inPackage reports whether class is in the package appID or below it.
func inPackage(class, appID string) bool {
	return appID != "" && strings.HasPrefix(class, appID) && len(class) > len(appID) && class[len(appID)] == '.'
}
