"""Studies: what an experiment claims, declared to the engine.

A study is one package (harness/studies/<name>/) holding its claims, one file each, with the
scenarios each reads and the figure that shows its evidence (harness.analyse.claims.study), and
the report's prose about them. The engine evaluates and draws what a study declares; nothing in
define … present names a study's scenarios or claims. The drivers (harness.drive) hand the study
to the report.
"""
