// Package grpclogz routes gRPC's internal logs into zap with every message
// scrubbed of addresses and other identifiers first. gRPC logs peer
// addresses in some warnings (a failed handshake "from 203.0.113.7:5555"),
// and the collector must never log an address.
package grpclogz

import (
	"fmt"
	"os"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"google.golang.org/grpc/grpclog"
)

// Logger implements grpclog.LoggerV2 over zap. gRPC's info messages are
// logged at debug level: they are chatty and of use only when debugging.
type Logger struct {
	log   *zap.Logger
	scrub func(string) string
}

var _ grpclog.LoggerV2 = (*Logger)(nil)

// New returns a Logger writing to log after passing each message through
// scrub.
func New(log *zap.Logger, scrub func(string) string) *Logger {
	return &Logger{log: log.WithOptions(zap.AddCallerSkip(2)), scrub: scrub}
}

func (l *Logger) write(lvl zapLevel, args ...any) {
	if ce := l.log.Check(lvl, ""); ce != nil {
		ce.Message = l.scrub(fmt.Sprint(args...))
		ce.Write()
	}
}

type zapLevel = zapcore.Level

// Info logs at debug level.
func (l *Logger) Info(args ...any) { l.write(zap.DebugLevel, args...) }

// Infoln logs at debug level.
func (l *Logger) Infoln(args ...any) { l.write(zap.DebugLevel, fmt.Sprintln(args...)) }

// Infof logs at debug level.
func (l *Logger) Infof(format string, args ...any) {
	l.write(zap.DebugLevel, fmt.Sprintf(format, args...))
}

// Warning logs at warn level.
func (l *Logger) Warning(args ...any) { l.write(zap.WarnLevel, args...) }

// Warningln logs at warn level.
func (l *Logger) Warningln(args ...any) { l.write(zap.WarnLevel, fmt.Sprintln(args...)) }

// Warningf logs at warn level.
func (l *Logger) Warningf(format string, args ...any) {
	l.write(zap.WarnLevel, fmt.Sprintf(format, args...))
}

// Error logs at error level.
func (l *Logger) Error(args ...any) { l.write(zap.ErrorLevel, args...) }

// Errorln logs at error level.
func (l *Logger) Errorln(args ...any) { l.write(zap.ErrorLevel, fmt.Sprintln(args...)) }

// Errorf logs at error level.
func (l *Logger) Errorf(format string, args ...any) {
	l.write(zap.ErrorLevel, fmt.Sprintf(format, args...))
}

// Fatal logs at error level and exits, as grpclog requires.
func (l *Logger) Fatal(args ...any) { l.write(zap.ErrorLevel, args...); _ = l.log.Sync(); os.Exit(1) }

// Fatalln logs at error level and exits.
func (l *Logger) Fatalln(args ...any) { l.Fatal(fmt.Sprintln(args...)) }

// Fatalf logs at error level and exits.
func (l *Logger) Fatalf(format string, args ...any) { l.Fatal(fmt.Sprintf(format, args...)) }

// V reports whether verbosity level v is enabled: only 0.
func (l *Logger) V(v int) bool { return v <= 0 }
