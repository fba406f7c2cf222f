"""Server plugins: `api` is what a plugin imports (the hooks' types); `dlp` is the shipped
example, a sensitive-word filter. docs/integrations.md, "Plugins", shows how to write one."""
