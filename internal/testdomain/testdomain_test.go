package testdomain

import (
	"net/http"
	"testing"
)

func TestStartStop(t *testing.T) {
	d := New(t, "api.example.com", 2, 3600)
	get := func(url string) error {
		resp, err := http.Get(url + "/readyz")
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	for _, x := range d.DTAs {
		if err := get(x.URL); err != nil {
			t.Fatal(err)
		}
	}
	d.DTAs[0].Stop()
	if get(d.DTAs[0].URL) == nil {
		t.Fatal("a stopped DTA still answers")
	}
	d.DTAs[0].Start()
	if err := get(d.DTAs[0].URL); err != nil {
		t.Fatal(err)
	}
}
