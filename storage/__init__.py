"""Storage shared by services and activities: artifact files and agent memories.

Both the API's services and the activities write and read these, so they live one layer below
both (contracts <- core <- storage <- services / activities)."""
