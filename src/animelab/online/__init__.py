"""Online-evaluation proxy: simulated users clicking the evaluated rows' pages (click models), their
expected online metrics, and interleaved comparisons of pairs of rows with their sensitivity."""
