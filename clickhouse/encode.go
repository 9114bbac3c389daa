package clickhouse

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/google/uuid"
)

// column is one column of a table: what the DDL needs.
type column struct {
	name    string
	typ     chType
	comment string
	// dflt is the DEFAULT expression, e.g. "''"; "" for none. Columns
	// added to existing tables have one, and the CREATE statement of a new
	// table states the same, so upgraded and new tables are alike.
	dflt string
}

// definition returns c as it appears in CREATE TABLE and in ALTER TABLE
// ... ADD COLUMN on d's servers: name, type, default, the comment if
// comment is set, and the codec on modern servers' storage tables. The
// codec must follow the comment: servers reject the reverse.
func (c column) definition(d Dialect, storage, comment bool) string {
	var b strings.Builder
	b.WriteString(c.name + " " + c.typ.in(d))
	if c.dflt != "" {
		b.WriteString(" DEFAULT " + c.dflt)
	}
	if comment {
		b.WriteString(" COMMENT " + quote(c.comment))
	}
	if d.Modern && storage && c.typ.codec != "" {
		b.WriteString(" CODEC(" + c.typ.codec + ")")
	}
	return b.String()
}

// field is a column of a table whose rows are inserted from Go values of
// type R. It pairs the column with the code that extracts its value, so the
// DDL and the insert cannot drift apart.
type field[R any] struct {
	column
	// newBuf returns an empty buffer that collects the column's values.
	newBuf func() colBuf[R]
}

// colBuf collects one column's values from a run of rows and hands them to
// a batch column in one call where the driver allows it.
type colBuf[R any] interface {
	// grow makes room for n more rows.
	grow(n int)
	add(r *R)
	appendTo(c driver.BatchColumn) error
	reset()
}

// scalarBuf collects a scalar column.
type scalarBuf[R, T any] struct {
	get  func(*R) T
	vals []T
}

func (b *scalarBuf[R, T]) grow(n int) { b.vals = slices.Grow(b.vals, n) }

func (b *scalarBuf[R, T]) add(r *R) { b.vals = append(b.vals, b.get(r)) }

func (b *scalarBuf[R, T]) appendTo(c driver.BatchColumn) error { return c.Append(b.vals) }

func (b *scalarBuf[R, T]) reset() {
	clear(b.vals) // drop references to the rows' strings
	b.vals = b.vals[:0]
}

// arrayBuf collects an array column into one flat slice with an end offset
// per row, so a row's array costs no allocation of its own.
type arrayBuf[R, T any] struct {
	// appendRow appends the row's elements to dst and returns it.
	appendRow func(dst []T, r *R) []T
	flat      []T
	ends      []int
}

func (b *arrayBuf[R, T]) grow(n int) { b.ends = slices.Grow(b.ends, n) }

func (b *arrayBuf[R, T]) add(r *R) {
	b.flat = b.appendRow(b.flat, r)
	b.ends = append(b.ends, len(b.flat))
}

// appendTo appends row by row: the driver's Append of a [][]T goes through
// reflection for every row, while AppendRow of a []T takes a typed path.
func (b *arrayBuf[R, T]) appendTo(c driver.BatchColumn) error {
	start := 0
	for _, end := range b.ends {
		if err := c.AppendRow(b.flat[start:end:end]); err != nil {
			return err
		}
		start = end
	}
	return nil
}

func (b *arrayBuf[R, T]) reset() {
	clear(b.flat)
	b.flat, b.ends = b.flat[:0], b.ends[:0]
}

func scalar[R, T any](name string, typ chType, comment string, get func(*R) T) field[R] {
	return field[R]{
		column: column{name: name, typ: typ, comment: comment},
		newBuf: func() colBuf[R] { return &scalarBuf[R, T]{get: get} },
	}
}

func array[R, T any](name string, typ chType, comment string, appendRow func([]T, *R) []T) field[R] {
	return field[R]{
		column: column{name: name, typ: typ, comment: comment},
		newBuf: func() colBuf[R] { return &arrayBuf[R, T]{appendRow: appendRow} },
	}
}

// arrayOf is an array column of conv(e) for each element e of elems(r).
func arrayOf[R, E, T any](name string, typ chType, comment string, elems func(*R) []E, conv func(E) T) field[R] {
	return array(name, typ, comment, func(dst []T, r *R) []T {
		for _, e := range elems(r) {
			dst = append(dst, conv(e))
		}
		return dst
	})
}

// The typed constructors below tie each ClickHouse type to the Go type its
// buffer holds.

func lowCardCol[R any](name, comment string, get func(*R) string) field[R] {
	return scalar(name, lowCardType(), comment, get)
}

func textCol[R any](name, comment string, get func(*R) string) field[R] {
	return scalar(name, textType(), comment, get)
}

func stringCol[R any](name, comment string, get func(*R) string) field[R] {
	return scalar(name, stringType(), comment, get)
}

// timeCol stores a time as DateTime('UTC'), in whole seconds.
func timeCol[R any](name, comment string, get func(*R) time.Time) field[R] {
	return scalar(name, timeType(), comment, get)
}

// withDefault returns f with the DEFAULT expression dflt.
func withDefault[R any](f field[R], dflt string) field[R] {
	f.dflt = dflt
	return f
}

// dateCol stores the UTC day of a time.
func dateCol[R any](name, comment string, get func(*R) time.Time) field[R] {
	return scalar(name, dateType(), comment, func(r *R) time.Time { return get(r).UTC() })
}

func eventTimeCol[R any](name, comment string, get func(*R) time.Time) field[R] {
	return scalar(name, eventTimeType(), comment, get)
}

func uuidCol[R any](name, comment string, get func(*R) [16]byte) field[R] {
	return scalar(name, uuidType(), comment, func(r *R) uuid.UUID { return get(r) })
}

func boolCol[R any](name, comment string, get func(*R) bool) field[R] {
	return scalar(name, uint8Type(), comment, func(r *R) uint8 { return b2u(get(r)) })
}

func uint32Col[R any](name, comment string, get func(*R) uint32) field[R] {
	return scalar(name, uint32Type(), comment, get)
}

func uint64Col[R any](name, comment string, get func(*R) uint64) field[R] {
	return scalar(name, uint64Type(), comment, get)
}

func b2u(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

// rowTable is a table whose rows are inserted from values of type R.
type rowTable[R any] struct {
	def *tableDef
	// insertSQL is the INSERT with its explicit column list, which 18.16
	// needs and which keeps inserts working when columns are added.
	insertSQL string
	// encoders reuses column buffers across inserts.
	encoders sync.Pool
}

// newRowTable returns the table for def in database with fields; def's
// columns become the fields' columns.
func newRowTable[R any](database string, def *tableDef, fields []field[R]) *rowTable[R] {
	def.database = database
	def.columns = make([]column, len(fields))
	for i, f := range fields {
		def.columns[i] = f.column
	}
	t := &rowTable[R]{
		def:       def,
		insertSQL: fmt.Sprintf("INSERT INTO %s.%s (%s)", database, def.name, strings.Join(def.columnNames(), ", ")),
	}
	t.encoders.New = func() any {
		e := &encoder[R]{bufs: make([]colBuf[R], len(fields))}
		for i, f := range fields {
			e.bufs[i] = f.newBuf()
		}
		return e
	}
	return t
}

// encoder holds one buffer per column of a table.
type encoder[R any] struct {
	bufs []colBuf[R]
}

// encode collects rows into the column buffers in one pass.
func (e *encoder[R]) encode(rows []R) {
	for _, b := range e.bufs {
		b.grow(len(rows))
	}
	for i := range rows {
		r := &rows[i]
		for _, b := range e.bufs {
			b.add(r)
		}
	}
}

// appendTo hands every column to batch.
func (e *encoder[R]) appendTo(batch driver.Batch) error {
	for i, b := range e.bufs {
		if err := b.appendTo(batch.Column(i)); err != nil {
			return err
		}
	}
	return nil
}

func (e *encoder[R]) reset() {
	for _, b := range e.bufs {
		b.reset()
	}
}
