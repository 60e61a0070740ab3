"""Reference endpoints of the benchmark harness (bench/run.py): tiny Django views that
say what this machine can do at all, measured in the same run as the real hot paths.

They live only in the bench settings (``refapp.settings``), never in the application's
URLconf, and are served by the same server process as the application, outside its
middleware (as the references of docs/anchors/performance.md were: bare Django)."""
