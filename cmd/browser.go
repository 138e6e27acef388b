package cmd

import (
	"os/exec"
	"runtime"
)

// openBrowser starts the system's browser on url when there is a display;
// false when it did not.
func openBrowser(getenv func(string) string, url string) bool {
	var name string
	switch runtime.GOOS {
	case "darwin":
		name = "open"
	case "windows":
		name = "rundll32"
	default:
		if getenv("DISPLAY") == "" && getenv("WAYLAND_DISPLAY") == "" {
			return false
		}
		name = "xdg-open"
	}
	path, err := exec.LookPath(name)
	if err != nil {
		return false
	}
	args := []string{url}
	if name == "rundll32" {
		args = []string{"url.dll,FileProtocolHandler", url}
	}
	c := exec.Command(path, args...)
	c.Stdout, c.Stderr = nil, nil
	if c.Start() != nil {
		return false
	}
	go c.Wait()
	return true
}
