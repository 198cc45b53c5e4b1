"""`make bench`: performance figures on a synthetic merchant (DESIGN.md "Performance targets")."""
