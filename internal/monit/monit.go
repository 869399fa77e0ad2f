// Package monit is `herd monit`, a terminal view of a running herd like
// `pm2 monit`: every instance with its state, pid, CPU and memory bars,
// restarts and uptime, the selected app's recent log lines below, and keys
// to reload, restart, scale, stop and start it. It reads the control
// socket once a second (Source), and Bubble Tea restores the terminal on
// exit, Ctrl-C included.
package monit

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/herdhq/herd/internal/logbuf"
	"github.com/herdhq/herd/internal/supervisor"
)

// Source is what monit reads and drives: a running herd's control API
// (*control.Client).
type Source interface {
	Status(ctx context.Context) ([]supervisor.AppStatus, error)
	Action(ctx context.Context, action, app string) error
	Scale(ctx context.Context, app, spec string) (int, error)
	Logs(ctx context.Context, app string, lines int, follow bool, fn func(logbuf.Line)) error
}

// Options tune Run; the zero value is the real terminal, once a second.
type Options struct {
	Input    io.Reader     // default: the terminal
	Output   io.Writer     // default: the terminal
	Interval time.Duration // between refreshes; default 1s
	Now      func() time.Time
}

// Run shows the view until the user quits (q, Ctrl-C) or ctx ends.
func Run(ctx context.Context, src Source, opts Options) error {
	m := newModel(ctx, src, opts)
	popts := []tea.ProgramOption{tea.WithContext(ctx)}
	if opts.Input != nil {
		popts = append(popts, tea.WithInput(opts.Input))
	}
	if opts.Output != nil {
		popts = append(popts, tea.WithOutput(opts.Output))
	}
	_, err := tea.NewProgram(m, popts...).Run()
	if err != nil && ctx.Err() != nil {
		return nil // herd's own stop, or the caller's
	}
	return err
}

// model is the view's state. Fetches and actions run as commands; their
// answers come back as messages.
type model struct {
	ctx      context.Context
	src      Source
	interval time.Duration
	now      func() time.Time

	apps     []supervisor.AppStatus
	selected int // index in apps
	logs     []logbuf.Line
	err      string // the last failed fetch, until one succeeds
	notice   string // what the last action did
	width    int
	height   int
}

func newModel(ctx context.Context, src Source, opts Options) *model {
	m := &model{ctx: ctx, src: src, interval: opts.Interval, now: opts.Now, width: 100, height: 30}
	if m.interval <= 0 {
		m.interval = time.Second
	}
	if m.now == nil {
		m.now = time.Now
	}
	return m
}

// Messages.
type (
	tickMsg   struct{}
	statusMsg struct {
		apps []supervisor.AppStatus
		err  error
	}
	logsMsg struct {
		app   string
		lines []logbuf.Line
	}
	actionMsg struct {
		what string
		err  error
	}
)

func (m *model) Init() tea.Cmd { return tea.Batch(m.fetchStatus(), m.tick()) }

func (m *model) tick() tea.Cmd {
	return tea.Tick(m.interval, func(time.Time) tea.Msg { return tickMsg{} })
}

// fetchStatus reads every app's instances.
func (m *model) fetchStatus() tea.Cmd {
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(m.ctx, 3*time.Second)
		defer cancel()
		apps, err := m.src.Status(ctx)
		return statusMsg{apps, err}
	}
}

// fetchLogs reads the selected app's last lines.
func (m *model) fetchLogs() tea.Cmd {
	app := m.selectedApp()
	if app == "" {
		return nil
	}
	n := max(m.height-m.tableHeight()-3, 5)
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(m.ctx, 3*time.Second)
		defer cancel()
		var lines []logbuf.Line
		_ = m.src.Logs(ctx, app, n, false, func(l logbuf.Line) { lines = append(lines, l) })
		return logsMsg{app, lines}
	}
}

// act runs an action on the selected app.
func (m *model) act(action string) tea.Cmd {
	app := m.selectedApp()
	if app == "" {
		return nil
	}
	m.notice = action + " " + app + "…"
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(m.ctx, 5*time.Minute)
		defer cancel()
		what := action + " " + app
		var err error
		switch action {
		case "scale +1", "scale -1":
			var n int
			n, err = m.src.Scale(ctx, app, strings.TrimPrefix(action, "scale "))
			what = fmt.Sprintf("%s now runs %d instances", app, n)
		default:
			err = m.src.Action(ctx, action, app)
			what += ": done"
		}
		return actionMsg{what, err}
	}
}

func (m *model) selectedApp() string {
	if m.selected < 0 || m.selected >= len(m.apps) {
		return ""
	}
	return m.apps[m.selected].Name
}

func (m *model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
	case tickMsg:
		return m, tea.Batch(m.fetchStatus(), m.fetchLogs(), m.tick())
	case statusMsg:
		if msg.err != nil {
			m.err = msg.err.Error()
			return m, nil
		}
		first := m.apps == nil
		m.err, m.apps = "", msg.apps
		m.selected = min(m.selected, max(len(m.apps)-1, 0))
		if first {
			return m, m.fetchLogs()
		}
	case logsMsg:
		if msg.app == m.selectedApp() {
			m.logs = msg.lines
		}
	case actionMsg:
		m.notice = msg.what
		if msg.err != nil {
			m.notice = "failed: " + msg.err.Error()
		}
		return m, m.fetchStatus()
	case tea.KeyPressMsg:
		return m, m.key(msg.String())
	}
	return m, nil
}

// key handles one key press.
func (m *model) key(k string) tea.Cmd {
	switch k {
	case "q", "ctrl+c", "esc":
		return tea.Quit
	case "up", "k":
		if m.selected > 0 {
			m.selected--
			m.logs = nil
			return m.fetchLogs()
		}
	case "down", "j":
		if m.selected < len(m.apps)-1 {
			m.selected++
			m.logs = nil
			return m.fetchLogs()
		}
	case "r":
		return m.act("reload")
	case "R":
		return m.act("restart")
	case "s":
		return m.act("stop")
	case "S":
		return m.act("start")
	case "+", "=":
		return m.act("scale +1")
	case "-":
		return m.act("scale -1")
	}
	return nil
}

// ANSI styles; the terminal's own colours otherwise.
const (
	bold    = "\x1b[1m"
	dim     = "\x1b[2m"
	reverse = "\x1b[7m"
	green   = "\x1b[32m"
	yellow  = "\x1b[33m"
	red     = "\x1b[31m"
	reset   = "\x1b[0m"
)

func (m *model) View() tea.View {
	var b strings.Builder
	instances := 0
	for _, a := range m.apps {
		instances += len(a.Instances)
	}
	fmt.Fprintf(&b, "%sherd monit%s  %d apps, %d instances  %s%s%s\n", bold, reset, len(m.apps), instances, dim, m.now().Format("15:04:05"), reset)
	fmt.Fprintf(&b, "%s↑↓ app  r reload  R restart  + - scale  s stop  S start  q quit%s\n\n", dim, reset)
	fmt.Fprintf(&b, "%s  %-18s %-9s %7s  %-22s %-24s %8s %8s%s\n", dim, "INSTANCE", "STATE", "PID", "CPU", "MEMORY", "RESTARTS", "UPTIME", reset)
	for i, a := range m.apps {
		marker := "  "
		if i == m.selected {
			marker = reverse + ">" + reset + " "
		}
		fmt.Fprintf(&b, "%s%s%s%s\n", marker, bold, a.Name, reset)
		for _, in := range a.Instances {
			b.WriteString(m.instanceLine(a.Name, in))
		}
	}
	b.WriteString("\n")
	switch {
	case m.err != "":
		fmt.Fprintf(&b, "%s%s%s\n", red, m.err, reset)
	case m.notice != "":
		fmt.Fprintf(&b, "%s\n", m.notice)
	default:
		b.WriteString("\n")
	}
	if app := m.selectedApp(); app != "" {
		fmt.Fprintf(&b, "%s── logs of %s ──%s\n", dim, app, reset)
		room := max(m.height-m.tableHeight()-3, 0)
		lines := m.logs
		if len(lines) > room {
			lines = lines[len(lines)-room:]
		}
		for _, l := range lines {
			b.WriteString(clip(l.Text, m.width) + "\n")
		}
	}
	v := tea.NewView(b.String())
	v.AltScreen = true
	v.WindowTitle = "herd monit"
	return v
}

// tableHeight is the number of lines above the log pane.
func (m *model) tableHeight() int {
	n := 4 + 2 // header, keys, blank, column titles; blank and notice below
	for _, a := range m.apps {
		n += 1 + len(a.Instances)
	}
	return n + 1
}

func (m *model) instanceLine(app string, in supervisor.InstanceStatus) string {
	state := string(in.State)
	switch in.State {
	case supervisor.Ready:
		state = green + fmt.Sprintf("%-9s", state) + reset
	case supervisor.Errored:
		state = red + fmt.Sprintf("%-9s", state) + reset
	default:
		state = yellow + fmt.Sprintf("%-9s", state) + reset
	}
	pid, uptime := "-", "-"
	if in.Pid != 0 {
		pid = strconv.Itoa(in.Pid)
		uptime = FormatUptime(m.now().Sub(in.StartedAt))
	}
	mb := float64(in.RSSBytes) / (1 << 20)
	line := fmt.Sprintf("    %-16s %s %7s  %s %5.1f%%  %s %7.1f MB %8d %8s\n",
		fmt.Sprintf("%s[%d]", app, in.Index), state, pid,
		bar(in.CPUPercent/100, 12), in.CPUPercent,
		bar(mb/1024, 12), mb, in.Restarts, uptime)
	if in.State != supervisor.Ready && in.LastExit != "" {
		line += fmt.Sprintf("      %slast exit: %s%s\n", dim, clip(in.LastExit, m.width-18), reset)
	}
	return line
}

// bar draws frac (0..1) of width cells.
func bar(frac float64, width int) string {
	n := int(frac*float64(width) + 0.5)
	n = min(max(n, 0), width)
	return "[" + strings.Repeat("█", n) + strings.Repeat("·", width-n) + "]"
}

func clip(s string, width int) string {
	if width > 1 && len(s) > width {
		return s[:width-1] + "…"
	}
	return s
}

// FormatUptime is d as `herd status` and monit show an uptime: 42s,
// 3m05s, 5h02m, 3d.
func FormatUptime(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}
