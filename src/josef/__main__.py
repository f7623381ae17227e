from josef.cli.main import main

raise SystemExit(main())
