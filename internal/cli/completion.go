package cli

import (
	"strings"

	ucli "github.com/urfave/cli/v3"
)

// Shell completion. urfave/cli builds the `completion` command (EnableShellCompletion
// on the root) and answers the scripts' requests itself: a script runs
// `polyroot <words typed> --generate-shell-completion` and offers the lines printed,
// the subcommands or, after a dash, the flags. configureCompletion only makes the
// command visible and words its help as the other commands' help is worded.

// completionShells are the shells whose scripts the help names; urfave/cli also has
// pwsh, which stays available but unlisted.
var completionShells = []string{"bash", "zsh", "fish"}

// configureCompletion shapes urfave/cli's completion command (it calls this when it
// adds the command, at the start of a run).
func configureCompletion(c *ucli.Command) {
	c.Hidden = false
	c.Usage = "print the shell completion script for " + strings.Join(completionShells, ", ") + ": commands and flags complete on TAB"
	c.UsageText = "polyroot completion bash|zsh|fish\n\n" +
		"Examples:\n" +
		"   source <(polyroot completion bash)                          # now, in this bash\n" +
		"   polyroot completion bash > /etc/bash_completion.d/polyroot  # every new bash\n" +
		"   polyroot completion zsh > \"${fpath[1]}/_polyroot\"           # zsh (compinit loads it)\n" +
		"   polyroot completion fish > ~/.config/fish/completions/polyroot.fish"
	c.Description = "Prints a script for the shell that completes polyroot's commands and flags: the\n" +
		"script asks polyroot itself for the words that fit where the cursor is, so it follows\n" +
		"the binary it runs. Load it once in a shell (source) or install it in the shell's\n" +
		"completion directory."
	c.Action = groupAction
	c.OnUsageError = usageError
	for _, sub := range c.Commands {
		if !strings.Contains(" "+strings.Join(completionShells, " ")+" ", " "+sub.Name+" ") {
			sub.Hidden = true
			continue
		}
		sub.Usage = "print the completion script for " + sub.Name
		sub.UsageText = "polyroot completion " + sub.Name + "\n\nExample:\n   " + completionExample(sub.Name)
		sub.OnUsageError = usageError
	}
}

// completionExample is how a script for shell is loaded.
func completionExample(shell string) string {
	switch shell {
	case "bash":
		return "source <(polyroot completion bash)"
	case "zsh":
		return "source <(polyroot completion zsh)"
	}
	return "polyroot completion fish > ~/.config/fish/completions/polyroot.fish"
}
