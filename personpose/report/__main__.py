from personpose.report.cli import main

raise SystemExit(main())
