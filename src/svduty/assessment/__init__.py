"""The Strategic Needs Assessment: report built from analysis Results."""
