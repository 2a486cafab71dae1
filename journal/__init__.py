"""The journal: its store (the only code that runs SQL), its chains (`ledger`), the keys that seal
what it keeps (`keys`, `sealing`) and the log configuration shared by every layer (`logs`)."""
