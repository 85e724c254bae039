package turn

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/pion/logging"
)

// levelTrace is below slog's Debug; pion's trace logs are per packet.
const levelTrace = slog.LevelDebug - 4

// slogFactory adapts a *slog.Logger to pion's LoggerFactory. Messages are formatted only
// when the level is enabled, so disabled debug logs on pion's hot paths cost one check.
type slogFactory struct{ log *slog.Logger }

func (f slogFactory) NewLogger(scope string) logging.LeveledLogger {
	return pionLogger{log: f.log.With("scope", scope)}
}

type pionLogger struct{ log *slog.Logger }

func (l pionLogger) emit(level slog.Level, msg string) {
	l.log.Log(context.Background(), level, msg)
}

func (l pionLogger) emitf(level slog.Level, format string, args ...any) {
	if l.log.Enabled(context.Background(), level) {
		l.log.Log(context.Background(), level, fmt.Sprintf(format, args...))
	}
}

func (l pionLogger) Trace(msg string)                  { l.emit(levelTrace, msg) }
func (l pionLogger) Tracef(format string, args ...any) { l.emitf(levelTrace, format, args...) }
func (l pionLogger) Debug(msg string)                  { l.emit(slog.LevelDebug, msg) }
func (l pionLogger) Debugf(format string, args ...any) { l.emitf(slog.LevelDebug, format, args...) }

// pion reports what remote clients get wrong (bad auth, refused peers, malformed packets) at
// info and error level; those are one level down here so that an Internet scanner cannot
// fill the error log.

func (l pionLogger) Info(msg string)                   { l.emit(slog.LevelDebug, msg) }
func (l pionLogger) Infof(format string, args ...any)  { l.emitf(slog.LevelDebug, format, args...) }
func (l pionLogger) Warn(msg string)                   { l.emit(slog.LevelInfo, msg) }
func (l pionLogger) Warnf(format string, args ...any)  { l.emitf(slog.LevelInfo, format, args...) }
func (l pionLogger) Error(msg string)                  { l.emit(slog.LevelWarn, msg) }
func (l pionLogger) Errorf(format string, args ...any) { l.emitf(slog.LevelWarn, format, args...) }
