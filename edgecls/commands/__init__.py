"""One module per ``edgecls`` sub-command; each imports its heavy modules inside the command."""
