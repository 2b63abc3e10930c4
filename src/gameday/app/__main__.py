"""``python -m gameday.app --service web --region R --instance-id ID --port P``."""

from gameday.app.server import main

raise SystemExit(main())
