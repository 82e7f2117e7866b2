from incrementific_client.cli import main

raise SystemExit(main())
