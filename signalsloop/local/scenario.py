"""The demo's sample feedback for a fictional product, Tidewater (a team task
planner). Written for the demo; no data set is copied here.

Several themes, one that passes the project's spec threshold, near-duplicates,
votes, comments, a competitor mention and an angry post with many votes.
"""

from __future__ import annotations

from dataclasses import dataclass

PRODUCT = "Tidewater"
SPEC_THRESHOLD = 10  # the demo project's theme_threshold (the default is 20)


@dataclass(frozen=True)
class Item:
    title: str
    body: str = ""
    votes: int = 0
    comments: tuple[str, ...] = ()


DARK_MODE = [
    Item("Please add a dark mode", "The white background is blinding when I plan at night.", 6,
         ("Yes please, my eyes hurt", "+1 for dark mode")),
    Item("Dark mode for the board view", "A dark theme for the board would be easier on the eyes.", 3),
    Item("Dark theme option", "Can we get a dark theme? Working late the bright UI hurts.", 2),
    Item("Night mode please", "A night mode with a dark background would be great.", 4),
    Item("Dark mode would be great", "I use dark mode everywhere except Tidewater.", 1),
    Item("Add dark mode to the mobile app", "The mobile app needs a dark mode for night use.", 2),
    Item("Support the system dark theme", "Follow the operating system dark mode setting.", 3),
    Item("Eye strain from the bright white theme", "Please offer a darker theme, the white screen strains my eyes.",
         2),
    Item("Dark mode request", "Any plans for dark mode? It is my most wanted feature.", 5),
    Item("Darker colours for late night work", "A dark mode would make late night planning much nicer.", 1),
    Item("Dark UI theme", "I would love a dark UI theme for the whole app.", 2),
    Item("Give us dark mode", "Every other tool has a dark mode now, please add one.", 3),
]

EXPORT = [
    Item("Export tasks to CSV", "We need to export our task list to CSV for reporting.", 4),
    Item("CSV export button does nothing", "Clicking the CSV export button does nothing at all."),
    Item("Export to Excel", "Let us export boards to an Excel spreadsheet.", 2),
    Item("Export time reports", "Our finance team needs time reports exported as CSV files.", 1),
]

NEAR_DUPLICATE = Item("The CSV export button does nothing", "Clicking the CSV export button does nothing at all.")

LOGIN = [
    Item("Login with Google fails", "Signing in with Google shows an error and sends me back to the login page.", 3),
    Item("Cannot log in after password reset", "After resetting my password I still cannot log in.", 2),
    Item("SSO login support", "We need single sign-on with Okta for our company.", 4),
]

MOBILE = [
    Item("Mobile app is slow", "The mobile app takes forever to load my boards.", 2),
    Item("Notifications arrive late on Android", "Push notifications show up hours after the due date.", 1),
]

PRAISE = [
    Item("Love the new calendar view", "The calendar view is fantastic, thank you!", 3),
    Item("Recurring tasks work great", "Recurring tasks saved me so much time, great job."),
]

COMPETITOR = Item("Asana has a timeline view, we need one too",
                  "We are considering switching to Asana because Tidewater has no timeline or Gantt view.", 4)
COMPETITOR_AGAIN = Item("Timeline view, please", "Our team lead says asana.com does this better and we may move "
                        "to Asana next quarter. Asana offers a timeline view with dependencies.", 2)

# The project's competitor catalogue (name, aliases, domains), as members would enter it.
COMPETITORS = [("Asana", ["Asana Work Management"], ["asana.com"]), ("Trello", [], ["trello.com"]),
               ("Notion", ["Notion HQ"], ["notion.so"])]
THREAT_THRESHOLD = 2  # mentions with switching intent or negative sentiment per week, for a threat
DAYS_LATER = 15  # how far the demo moves the clock: past the 14 days of silence and of no progress

# After the clock moved on: a newcomer who posts, votes and comments becomes engaged.
NEWCOMER = Item("Keyboard shortcuts for the board", "Power users need shortcuts to move cards quickly.", 0,
                ("Shortcuts for due dates too", "And one to archive a card"))

ANGRY = Item("The app keeps crashing and I lost all my work",
             "This is unacceptable. The app crashed three times today and deleted my tasks. Fix this now!", 12,
             ("Same here, lost a whole sprint plan", "This is costing us real money"))


def waves() -> list[list[Item]]:
    """Feedback in the order a week of usage might bring it; the near-duplicate
    comes after its original has been processed, as it would in real life."""
    return [
        [EXPORT[0], EXPORT[1], LOGIN[0], DARK_MODE[0], PRAISE[0], MOBILE[0]],
        [*DARK_MODE[1:6], EXPORT[2], LOGIN[1], COMPETITOR],
        [NEAR_DUPLICATE, *DARK_MODE[6:], EXPORT[3], LOGIN[2], MOBILE[1], PRAISE[1], ANGRY, COMPETITOR_AGAIN],
    ]
