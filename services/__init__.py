"""Domain services. None of them imports Flask's request, g or session: each
takes its clients and settings in its constructor and can be used without an app."""
