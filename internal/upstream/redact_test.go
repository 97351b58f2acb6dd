package upstream

import "testing"

func TestRedact(t *testing.T) {
	tests := []struct{ in, want string }{
		{"https://proxy.example", "https://proxy.example"},
		{"https://user:secret@proxy.example/x", "https://user:xxxxx@proxy.example/x"},
		{"https://TOKEN@proxy.example", "https://xxxxx@proxy.example"},
		{"https://us er:secret@proxy.example", "https://xxxxx@proxy.example"}, // does not parse
		{"direct", "direct"},
		{"file:///srv/mods", "file:///srv/mods"},
	}
	for _, tt := range tests {
		if got := RedactURL(tt.in); got != tt.want {
			t.Errorf("RedactURL(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	list := "https://a:pw@one.example,https://TOKEN@two.example|direct"
	if got, want := RedactGOPROXY(list), "https://a:xxxxx@one.example,https://xxxxx@two.example|direct"; got != want {
		t.Errorf("RedactGOPROXY(%q) = %q, want %q", list, got, want)
	}
}
