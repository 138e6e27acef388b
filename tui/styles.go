package tui

import (
	"os"

	"github.com/charmbracelet/lipgloss"
	"github.com/muesli/termenv"
)

// styles holds every lipgloss style of the app. Nothing outside this file
// picks a colour. Under NO_COLOR the renderer's profile is Ascii, so these
// render as plain text and layout never depends on colour: the selected row
// carries a "›" marker and the active tab sits in brackets.
type styles struct {
	App        lipgloss.Style
	Brand      lipgloss.Style
	Tab        lipgloss.Style
	ActiveTab  lipgloss.Style
	Title      lipgloss.Style
	Header     lipgloss.Style
	Selected   lipgloss.Style
	Dim        lipgloss.Style
	Error      lipgloss.Style
	Success    lipgloss.Style
	Warning    lipgloss.Style
	Label      lipgloss.Style
	FocusLabel lipgloss.Style
	Box        lipgloss.Style
	TokenBox   lipgloss.Style
	Token      lipgloss.Style
	Help       lipgloss.Style
	StatusOK   lipgloss.Style
	StatusWarn lipgloss.Style
	StatusBad  lipgloss.Style
}

// noColor reports whether the NO_COLOR convention asks for no colour.
func noColor() bool {
	_, set := os.LookupEnv("NO_COLOR")
	return set && os.Getenv("NO_COLOR") != ""
}

// applyColorProfile switches lipgloss to plain ASCII output when NO_COLOR is
// set (https://no-color.org).
func applyColorProfile() {
	if noColor() {
		lipgloss.SetColorProfile(termenv.Ascii)
	}
}

func newStyles() styles {
	accent := lipgloss.AdaptiveColor{Light: "#5A3FC0", Dark: "#A48CFF"}
	subtle := lipgloss.AdaptiveColor{Light: "#8A8A8A", Dark: "#6C6C6C"}
	red := lipgloss.AdaptiveColor{Light: "#C0392B", Dark: "#FF6B6B"}
	green := lipgloss.AdaptiveColor{Light: "#1E8449", Dark: "#5FD787"}
	yellow := lipgloss.AdaptiveColor{Light: "#9A7D0A", Dark: "#F4D03F"}
	return styles{
		App:        lipgloss.NewStyle(),
		Brand:      lipgloss.NewStyle().Bold(true).Foreground(accent),
		Tab:        lipgloss.NewStyle().Foreground(subtle),
		ActiveTab:  lipgloss.NewStyle().Bold(true).Foreground(accent),
		Title:      lipgloss.NewStyle().Bold(true),
		Header:     lipgloss.NewStyle().Bold(true).Foreground(subtle),
		Selected:   lipgloss.NewStyle().Bold(true).Foreground(accent),
		Dim:        lipgloss.NewStyle().Foreground(subtle),
		Error:      lipgloss.NewStyle().Foreground(red),
		Success:    lipgloss.NewStyle().Foreground(green),
		Warning:    lipgloss.NewStyle().Foreground(yellow),
		Label:      lipgloss.NewStyle(),
		FocusLabel: lipgloss.NewStyle().Bold(true).Foreground(accent),
		Box:        lipgloss.NewStyle().Border(lipgloss.RoundedBorder()).BorderForeground(accent).Padding(0, 1),
		// The token box has no side borders so a mouse selection of the token
		// line picks up the token and nothing else.
		TokenBox:   lipgloss.NewStyle().Border(lipgloss.DoubleBorder(), true, false).BorderForeground(yellow),
		Token:      lipgloss.NewStyle().Bold(true),
		Help:       lipgloss.NewStyle().Foreground(subtle),
		StatusOK:   lipgloss.NewStyle().Foreground(green),
		StatusWarn: lipgloss.NewStyle().Foreground(yellow),
		StatusBad:  lipgloss.NewStyle().Foreground(red),
	}
}
