package deploy

import (
	"encoding/json"
	"fmt"
	"html/template"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"maps"
	"math"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modgate/modgate/internal/testenv"
)

// TestDashboard runs the dashboard against real data: a modgate serving a
// varied load (hits, misses, not found, policy refusals, an upstream that
// fails and goes down, a tampered zip) is scraped every second by a real
// Prometheus, and every panel's queries are run over that range. Each
// panel must show at least one series: a query that names a metric or
// label modgate does not have, or that Prometheus rejects, fails here.
//
// The panels are then drawn as an HTML page of SVG charts in the
// dashboard's own layout. With MODGATE_DASHBOARD_PNG=path (and
// MODGATE_DASHBOARD_SECONDS, default 150, for a longer load), headless
// Chromium screenshots that page into path; this is how
// docs/dashboard.png is made:
//
//	MODGATE_DASHBOARD_PNG=$PWD/docs/dashboard.png go test ./deploy -run TestDashboard -v
func TestDashboard(t *testing.T) {
	prom := tool(t, "prometheus", promtoolInstall)
	shot := os.Getenv("MODGATE_DASHBOARD_PNG")
	seconds := 15
	if shot != "" {
		seconds = 150
		if s, err := strconv.Atoi(os.Getenv("MODGATE_DASHBOARD_SECONDS")); err == nil && s > 0 {
			seconds = s
		}
	}
	var extra []*testenv.Module
	for i := range 120 {
		m, err := testenv.ParseModule(fmt.Appendf(nil, "module example.com/gen/m%d\nversion v1.0.0\n-- go.mod --\nmodule example.com/gen/m%d\n-- m.go --\npackage m\n", i, i))
		if err != nil {
			t.Fatal(err)
		}
		extra = append(extra, m)
	}
	modgate, up := startModgate(t, `
policy:
  rules:
    - name: no-evil
      deny:
        modules: [example.com/evil]
`, extra...)
	promURL := startPrometheus(t, prom, strings.TrimPrefix(modgate, "http://"))

	start := time.Now()
	load(t, modgate, up, time.Duration(seconds)*time.Second)
	time.Sleep(2 * time.Second) // the last scrape
	end := time.Now()

	d := readDashboard(t)
	window := "10s"
	if shot != "" {
		window = "20s"
	}
	vars := strings.NewReplacer("$__rate_interval", window, "$__interval", "1s", "$instance", ".*")
	var rendered []renderedPanel
	for _, p := range d.Panels {
		rp := renderedPanel{panel: p}
		for _, tg := range p.Targets {
			series, err := queryRange(t, promURL, vars.Replace(tg.Expr), start, end)
			if err != nil {
				t.Errorf("panel %q %s: %v", p.Title, tg.RefID, err)
				continue
			}
			for _, s := range series {
				s.name = legend(tg.LegendFormat, s.labels)
				rp.series = append(rp.series, s)
			}
		}
		if p.Type != "row" && len(rp.series) == 0 {
			t.Errorf("panel %q shows no data after %ds of load", p.Title, seconds)
		}
		rendered = append(rendered, rp)
	}
	page := filepath.Join(t.TempDir(), "dashboard.html")
	height := renderDashboard(t, page, d.Title, rendered, start, end)
	if shot == "" {
		return
	}
	chromium := tool(t, "chromium", "Debian: apt-get install chromium")
	out, err := exec.CommandContext(t.Context(), chromium, "--headless", "--no-sandbox", "--disable-gpu",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
		"--hide-scrollbars", "--screenshot="+shot, fmt.Sprintf("--window-size=%d,%d", pageWidth, height), "file://"+page).CombinedOutput()
	if err != nil {
		t.Fatalf("chromium: %v\n%s", err, out)
	}
	if err := shrinkPNG(shot); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s", shot)
}

// shrinkPNG rewrites the screenshot with its 256 most frequent colours: a
// flat page of a few thousand antialiased shades loses nothing visible,
// and the file shrinks to about a third.
func shrinkPNG(file string) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	img, err := png.Decode(f)
	f.Close()
	if err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	count := map[color.RGBA]int{}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			c := color.RGBAModel.Convert(img.At(x, y)).(color.RGBA)
			count[c]++
		}
	}
	colors := slices.Collect(maps.Keys(count))
	slices.SortFunc(colors, func(a, b color.RGBA) int { return count[b] - count[a] })
	pal := make(color.Palette, 0, 256)
	for _, c := range colors[:min(256, len(colors))] {
		pal = append(pal, c)
	}
	p := image.NewPaletted(b, pal)
	draw.Draw(p, b, img, b.Min, draw.Src)
	out, err := os.Create(file)
	if err != nil {
		return err
	}
	if err := (&png.Encoder{CompressionLevel: png.BestCompression}).Encode(out, p); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// startPrometheus runs a real Prometheus on 127.0.0.1 that scrapes target
// every second as job "modgate", and returns its URL.
func startPrometheus(t *testing.T, bin, target string) string {
	t.Helper()
	dir := t.TempDir()
	cfg := fmt.Sprintf("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: modgate\n    static_configs:\n      - targets: [%q]\n", target)
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := "127.0.0.1:" + freePort(t)
	cmd := exec.Command(bin, "--config.file="+filepath.Join(dir, "prometheus.yml"), "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--log.level=warn")
	cmd.Stdout, cmd.Stderr = t.Output(), t.Output()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
	})
	u := "http://" + addr
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if resp, err := http.Get(u + "/-/ready"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return u
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("prometheus did not get ready within 20s")
		}
	}
}

// load sends a varied load to modgate for d: cache hits, lists, not
// found, refusals by policy and checksum database requests from four
// clients at a rate that rises and falls, and from a fifth one miss a
// second, now and then a module the upstream fails for and a tampered
// zip; the whole upstream is down for a fifth of the time.
func load(t *testing.T, modgate string, up *testenv.Upstream, d time.Duration) {
	t.Helper()
	up.SetStatus("/example.com/greet/", 500)
	up.SetTamper("example.com/hello/v2", "v2.0.0", true)
	client := &http.Client{Timeout: 10 * time.Second}
	fetch := func(p string) {
		resp, err := client.Get(modgate + p)
		if err == nil {
			resp.Body.Close()
		}
	}
	hot := []string{"/example.com/hello/@v/v1.0.0.info", "/example.com/hello/@v/v1.0.0.mod", "/example.com/hello/@v/v1.0.0.zip",
		"/example.com/hello/@v/list", "/example.com/hello/@latest", "/example.com/hello/@v/v1.1.0.zip"}
	begin := time.Now()
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := 0; time.Since(begin) < d; i++ {
				phase := time.Since(begin).Seconds() / d.Seconds()
				fetch(hot[(i+w)%len(hot)])
				switch i % 10 {
				case 3:
					fetch("/example.com/missing/@v/v1.0.0.info")
				case 6:
					fetch("/example.com/evil/@v/v1.0.0.zip")
				case 9:
					fetch("/sumdb/" + up.SumDBName() + "/supported")
				}
				// 20 to 80 requests a second per client, in waves.
				rate := 50 + 30*math.Sin(phase*4*math.Pi)
				time.Sleep(time.Duration(float64(time.Second) / rate))
			}
		})
	}
	wg.Go(func() {
		for i := 0; time.Since(begin) < d; i++ {
			phase := time.Since(begin).Seconds() / d.Seconds()
			up.SetDown(phase > 0.55 && phase < 0.75)
			fetch(fmt.Sprintf("/example.com/gen/m%d/@v/v1.0.0.zip", i%120))
			switch i % 15 {
			case 4, 11:
				// Fails at the upstream: an error, not enough in a row to
				// mark the upstream down.
				fetch("/example.com/greet/@v/v1.0.0.mod")
			case 7:
				fetch("/example.com/hello/v2/@v/v2.0.0.zip")
			}
			time.Sleep(time.Second)
		}
		up.SetDown(false)
	})
	wg.Wait()
}

// A series is one line of a chart.
type series struct {
	name   string
	labels map[string]string
	times  []float64
	values []float64
}

// queryRange runs expr over [start, end] at a 1s step.
func queryRange(t *testing.T, promURL, expr string, start, end time.Time) ([]series, error) {
	t.Helper()
	q := url.Values{"query": {expr}, "start": {strconv.FormatInt(start.Unix(), 10)}, "end": {strconv.FormatInt(end.Unix(), 10)}, "step": {"1"}}
	resp, err := http.Get(promURL + "/api/v1/query_range?" + q.Encode())
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var body struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
				Values [][2]any          `json:"values"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, fmt.Errorf("query %q: %v", expr, err)
	}
	if body.Status != "success" {
		return nil, fmt.Errorf("query %q: %s", expr, body.Error)
	}
	var out []series
	for _, r := range body.Data.Result {
		s := series{labels: r.Metric}
		for _, v := range r.Values {
			ts, _ := v[0].(float64)
			str, _ := v[1].(string)
			f, err := strconv.ParseFloat(str, 64)
			if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
				continue
			}
			s.times = append(s.times, ts)
			s.values = append(s.values, f)
		}
		if len(s.values) > 0 {
			out = append(out, s)
		}
	}
	return out, nil
}

var legendVar = regexp.MustCompile(`\{\{\s*(\w+)\s*\}\}`)

// legend fills a Grafana legend format with a series' labels.
func legend(format string, labels map[string]string) string {
	if format == "" {
		return fmt.Sprint(labels)
	}
	return legendVar.ReplaceAllStringFunc(format, func(m string) string {
		return labels[legendVar.FindStringSubmatch(m)[1]]
	})
}

type renderedPanel struct {
	panel
	series []series
}

const (
	pageWidth  = 1400
	unitHeight = 26 // pixels per grid unit of height, as in Grafana (30) but denser
)

// palette is Grafana's classic series colours.
var palette = []string{"#7eb26d", "#eab839", "#6ed0e0", "#ef843c", "#e24d42", "#1f78c1", "#ba43a9", "#705da0", "#508642", "#cca300"}

// renderDashboard writes the panels as an HTML page of SVG charts laid out
// on the dashboard's 24-column grid, and returns the page height.
func renderDashboard(t *testing.T, file, title string, panels []renderedPanel, start, end time.Time) int {
	t.Helper()
	type box struct {
		Left, Top, Width, Height int
		Title                    string
		Row                      bool
		Stat                     string
		SVG                      template.HTML
		Legend                   []struct{ Name, Color string }
	}
	colWidth := float64(pageWidth-16) / 24
	var boxes []box
	bottom := 0
	for _, p := range panels {
		b := box{
			Left: 8 + int(float64(p.GridPos.X)*colWidth), Top: 48 + p.GridPos.Y*unitHeight,
			Width: int(float64(p.GridPos.W)*colWidth) - 6, Height: p.GridPos.H*unitHeight - 6,
			Title: p.Title, Row: p.Type == "row",
		}
		bottom = max(bottom, b.Top+b.Height)
		switch p.Type {
		case "row":
		case "stat":
			if len(p.series) > 0 {
				s := p.series[0]
				b.Stat = formatValue(s.values[len(s.values)-1], p.FieldConfig.Defaults.Unit)
				if len(p.series) > 1 {
					o := p.series[1]
					b.Stat += " / " + formatValue(o.values[len(o.values)-1], p.FieldConfig.Defaults.Unit)
				}
			}
		default:
			b.SVG = chart(p.series, p.FieldConfig.Defaults.Unit, b.Width-16, b.Height-70, float64(start.Unix()), float64(end.Unix()))
			for i, s := range p.series {
				if i == 8 {
					break
				}
				b.Legend = append(b.Legend, struct{ Name, Color string }{s.name, palette[i%len(palette)]})
			}
		}
		boxes = append(boxes, b)
	}
	page := template.Must(template.New("page").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>{{.Title}}</title><style>
body{margin:0;background:#111217;color:#ccccdc;font:12px/1.3 "DejaVu Sans",Arial,sans-serif;position:relative}
h1{font-size:18px;font-weight:500;margin:0;padding:12px 12px 0}
.p{position:absolute;background:#181b1f;border:1px solid #2c3235;border-radius:3px;box-sizing:border-box;padding:6px 8px;overflow:hidden}
.row{position:absolute;font-size:14px;font-weight:500;color:#d8d9da;border:0;background:none;padding-top:4px}
.t{font-weight:500;color:#d8d9da;margin-bottom:4px;white-space:nowrap}
.stat{font-size:30px;color:#73bf69;font-weight:500;text-align:center;margin-top:14px}
.lg{display:flex;flex-wrap:wrap;gap:2px 10px;font-size:11px;margin-top:2px}
.lg span{white-space:nowrap;overflow:hidden;max-width:300px}
.lg i{display:inline-block;width:10px;height:3px;margin:0 4px 3px 0;vertical-align:middle}
svg text{fill:#8e8e8e;font-size:10px}
</style></head><body><h1>{{.Title}}</h1>
{{range .Boxes}}{{if .Row}}<div class="row" style="left:{{.Left}}px;top:{{.Top}}px;width:{{.Width}}px">▾ {{.Title}}</div>
{{else}}<div class="p" style="left:{{.Left}}px;top:{{.Top}}px;width:{{.Width}}px;height:{{.Height}}px"><div class="t">{{.Title}}</div>{{if .Stat}}<div class="stat">{{.Stat}}</div>{{end}}{{.SVG}}
{{if .Legend}}<div class="lg">{{range .Legend}}<span><i style="background:{{.Color}}"></i>{{.Name}}</span>{{end}}</div>{{end}}</div>
{{end}}{{end}}</body></html>`))
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := page.Execute(f, struct {
		Title string
		Boxes []box
	}{title, boxes}); err != nil {
		t.Fatal(err)
	}
	return bottom + 8
}

// chart draws series as lines in an SVG of w×h pixels, with a y axis in
// unit and the time range [t0, t1] along x.
func chart(ss []series, unit string, w, h int, t0, t1 float64) template.HTML {
	const left, top, bottomPad = 58, 8, 16
	lo, hi := 0.0, 0.0
	for _, s := range ss {
		for _, v := range s.values {
			lo, hi = min(lo, v), max(hi, v)
		}
	}
	if hi == lo {
		hi = lo + 1
	}
	hi += (hi - lo) * 0.05
	pw, ph := float64(w-left-4), float64(h-bottomPad-top)
	x := func(ts float64) float64 { return left + (ts-t0)/(t1-t0)*pw }
	y := func(v float64) float64 { return top + (1-(v-lo)/(hi-lo))*ph }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg width="%d" height="%d" xmlns="http://www.w3.org/2000/svg">`, w, h)
	for i := 0; i <= 4; i++ {
		v := lo + (hi-lo)*float64(i)/4
		fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#2c3235"/><text x="%d" y="%.1f" text-anchor="end">%s</text>`,
			left, w, y(v), y(v), left-4, y(v)+3, template.HTMLEscapeString(formatValue(v, unit)))
	}
	for i, anchor := range []string{"start", "middle", "middle", "middle", "end"} {
		ts := t0 + (t1-t0)*float64(i)/4
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="%s">%s</text>`, x(ts), h-2, anchor, time.Unix(int64(ts), 0).UTC().Format("15:04:05"))
	}
	for i, s := range ss {
		var pts strings.Builder
		for j := range s.values {
			fmt.Fprintf(&pts, "%.1f,%.1f ", x(s.times[j]), y(s.values[j]))
		}
		c := palette[i%len(palette)]
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="1.5" points="%s"/>`, c, pts.String())
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// formatValue writes v in a Grafana unit, briefly.
func formatValue(v float64, unit string) string {
	si := func(v float64, suffix string, base float64, prefixes []string) string {
		i := 0
		for math.Abs(v) >= base && i < len(prefixes)-1 {
			v /= base
			i++
		}
		return strconv.FormatFloat(v, 'f', decimals(v), 64) + " " + prefixes[i] + suffix
	}
	switch unit {
	case "bytes":
		return si(v, "B", 1024, []string{"", "Ki", "Mi", "Gi", "Ti"})
	case "Bps":
		return si(v, "B/s", 1024, []string{"", "Ki", "Mi", "Gi"})
	case "percentunit":
		return strconv.FormatFloat(v*100, 'f', decimals(v*100), 64) + "%"
	case "reqps":
		return si(v, "req/s", 1000, []string{"", "k", "M"})
	case "ops":
		return si(v, "ops/s", 1000, []string{"", "k", "M"})
	case "s":
		if math.Abs(v) < 1 && v != 0 {
			return strconv.FormatFloat(v*1000, 'f', decimals(v*1000), 64) + " ms"
		}
		return strconv.FormatFloat(v, 'f', decimals(v), 64) + " s"
	}
	return si(v, "", 1000, []string{"", "K", "M", "G"})
}

func decimals(v float64) int {
	switch a := math.Abs(v); {
	case a == math.Trunc(a) || a >= 100:
		return 0
	case a >= 10:
		return 1
	default:
		return 2
	}
}

func TestShrinkPNG(t *testing.T) {
	img := image.NewRGBA(image.Rect(0, 0, 40, 30))
	for y := range 30 {
		for x := range 40 {
			img.Set(x, y, color.RGBA{uint8(x * 6), uint8(y * 8), 7, 255}) // 1200 colours
		}
	}
	file := filepath.Join(t.TempDir(), "a.png")
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := png.Encode(f, img); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if err := shrinkPNG(file); err != nil {
		t.Fatalf("shrinkPNG: %v", err)
	}
	f, err = os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	p, ok := got.(*image.Paletted)
	if !ok || len(p.Palette) > 256 || p.Bounds() != img.Bounds() {
		t.Errorf("shrinkPNG wrote %T with bounds %v, want a paletted image of at most 256 colours and bounds %v", got, got.Bounds(), img.Bounds())
	}
}
